"""The tiny local base model: Qwen3 shape, deterministic, its tokenizer and chat template, a LoRA step on it."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from opaque_knapsack.cli import main  # noqa: E402
from opaque_knapsack.student.smoke import SmokeError, assistant_regions, check_assistant_mask  # noqa: E402
from opaque_knapsack.student.tiny_model import TinyModelError, TinyModelSpec, build_tiny_model  # noqa: E402

from .peft_quiet import lora_model  # noqa: E402

pytestmark = pytest.mark.train

CODE = "```python\nitems = json.loads(list_items())\nfor i in items[:3]:\n    print(inspect(i))\n```"
CONVERSATION = [
    {"role": "system", "content": "You solve knapsack tasks with Python. Héllo ✓."},
    {"role": "user", "content": "Capacity 40. Inspect budget 9."},
    {"role": "assistant", "content": CODE},
    {"role": "user", "content": 'Observation:\n{"class": "A", "value": 12, "weight": 5}'},
    {"role": "assistant", "content": "```python\ntake_item('item_0')\nfinish()\n```", "reasoning_content": "take it"},
]


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "traces.jsonl"
    lines = []
    for index in range(30):
        messages = json.loads(json.dumps(CONVERSATION).replace("item_0", f"item_{index}").replace("40", str(40 + index)))
        lines.append(json.dumps({"messages": messages, "runtime": "persistent"}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def model_dir(traces, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "base"
    build_tiny_model(out, [traces], TinyModelSpec(seed=1))
    return out


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return transformers.AutoTokenizer.from_pretrained(str(model_dir))


def test_shape_is_qwen3_tiny_and_readable_by_older_transformers(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen3" and config["architectures"] == ["Qwen3ForCausalLM"]
    assert (config["hidden_size"], config["num_hidden_layers"]) == (256, 4)
    assert config["max_position_embeddings"] == 40960  # covers serve's default --max-model-len
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]
    assert config["torch_dtype"] == "float32"
    tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "enable_thinking" in tokenizer_config["chat_template"]
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir))
    parameters = sum(p.numel() for p in model.parameters())
    assert 5_000_000 < parameters < 9_000_000


def test_same_seed_same_bytes_other_seed_other_weights(traces, model_dir, tmp_path):
    again = build_tiny_model(tmp_path / "again", [traces], TinyModelSpec(seed=1))
    other = build_tiny_model(tmp_path / "other", [traces], TinyModelSpec(seed=2))
    for name in ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (model_dir / name).read_bytes(), name
    assert other["weights_sha256"] != again["weights_sha256"]
    assert other["tokenizer_sha256"] == again["tokenizer_sha256"]  # the tokenizer depends on the corpus only


def test_byte_level_round_trip_and_special_tokens(tokenizer):
    for text in (CODE, "Héllo ✓ — unseen ünïcödé 🙂", "<think>\n\n</think>\n\n"):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token == "<|im_end|>"
    assert len(tokenizer("<|im_start|>", add_special_tokens=False)["input_ids"]) == 1


def test_chat_template_honours_enable_thinking(tokenizer):
    prompt = CONVERSATION[:2]
    off = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    on = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on.endswith("<|im_start|>assistant\n")
    # with thinking off, the prompt is the prefix the trained conversation continues from
    full = tokenizer.apply_chat_template(CONVERSATION[:3], tokenize=False)
    assert full.startswith(off) and full[len(off):] == CODE + "<|im_end|>\n"
    assert "<think>\ntake it\n</think>\n\n" in tokenizer.apply_chat_template(CONVERSATION, tokenize=False)


def test_assistant_mask_is_exactly_the_assistant_turns(tokenizer):
    encoded = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
    start, end = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    header = tokenizer("assistant\n", add_special_tokens=False)["input_ids"]
    regions = assistant_regions(ids, start, end, header)
    assert len(regions) == 2
    assert [i for i, bit in enumerate(mask) if bit] == [i for region in regions for i in region]
    # the smoke run's check of Axolotl's labels accepts this mask, and refuses a shifted one
    labels = [token if bit else -100 for token, bit in zip(ids, mask, strict=True)]
    check_assistant_mask([{"input_ids": ids, "labels": labels}], start, end, header)
    with pytest.raises(SmokeError, match="outside the assistant turns"):
        check_assistant_mask([{"input_ids": ids, "labels": [ids[0]] + labels[1:]}], start, end, header)


@pytest.mark.slow
def test_forward_and_a_lora_step_lower_the_loss(model_dir, tokenizer):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir))
    encoded = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids = torch.tensor([list(encoded["input_ids"])])
    labels = torch.where(torch.tensor([list(encoded["assistant_masks"])]).bool(), ids, torch.tensor(-100))
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], model.config.vocab_size)
    model = lora_model(peft, model, peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj"], task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8, losses


def test_cli_bad_traces_is_one_line(tmp_path, capsys):
    assert main(["tiny-model", "--out", str(tmp_path / "m"), "--traces", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{tmp_path / 'missing.jsonl'}: no such traces file or log directory" in err and len(err.splitlines()) == 1
    with pytest.raises(TinyModelError, match="no message text"):
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n")
        build_tiny_model(tmp_path / "m2", [empty])


def test_cli_builds_from_given_traces(traces, tmp_path, capsys):
    assert main(["tiny-model", "--out", str(tmp_path / "m"), "--traces", str(traces), "--seed", "3"]) == 0
    assert "Qwen3 architecture" in capsys.readouterr().out
    assert json.loads((tmp_path / "m" / "opaque_knapsack_tiny.json").read_text())["seed"] == 3
