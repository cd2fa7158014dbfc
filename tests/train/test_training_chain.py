"""The export -> tokenization -> LoRA training chain on CPU, with no download.

Optional: runs when torch, transformers, peft and tokenizers are importable
(the ``train`` extra; CPU torch is enough). The tokenizer is a WordLevel
model trained on the exported text itself, wrapped as a fast tokenizer with a
ChatML-style Jinja chat template whose ``{% generation %}`` markers make
``apply_chat_template`` return the assistant-token mask that SFT trains on.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
tokenizers = pytest.importorskip("tokenizers")

from opaque_knapsack.train.export import export_traces  # noqa: E402

from .peft_quiet import lora_model  # noqa: E402

pytestmark = pytest.mark.train

SPECIALS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]

# ChatML layout; the assistant's content, tool calls and end-of-turn token are
# the trained span (Axolotl's roles_to_train [assistant], train_on_eos turn).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] }}"
    "{% for call in message.get('tool_calls') or [] %}"
    "{{ ' <tool_call> ' + call['function']['name'] + ' ' + call['function']['arguments'] + ' </tool_call>' }}"
    "{% endfor %}"
    "{{ '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
)


def assistant_text(message: dict) -> str:
    calls = "".join(
        f" <tool_call> {call['function']['name']} {call['function']['arguments']} </tool_call>"
        for call in message.get("tool_calls") or []
    )
    return message["content"] + calls + "<|im_end|>"


@pytest.fixture(scope="module")
def conversations(fixture_logs, real_logs, tmp_path_factory) -> list[list[dict]]:
    """Exported fake-task episodes plus the real task's CodeAct and ReAct episodes."""
    directory = tmp_path_factory.mktemp("chain")
    export_traces([fixture_logs.persistent, fixture_logs.react], directory / "fake.jsonl")
    export_traces([real_logs.persistent, real_logs.react], directory / "real.jsonl")
    return [
        json.loads(line)["messages"]
        for name in ("fake.jsonl", "real.jsonl")
        for line in (directory / name).read_text().splitlines()
    ]


@pytest.fixture(scope="module")
def tokenizer(conversations):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    model = Tokenizer(models.WordLevel(unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [
        text
        for messages in conversations
        for message in messages
        for text in (message["content"], assistant_text(message), message["role"])
    ]
    model.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=model, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>"
    )
    fast.add_special_tokens({"additional_special_tokens": SPECIALS[2:]})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def expected_mask(tokenizer, messages: list[dict]) -> tuple[list[int], str]:
    """Mask computed independently: tokens whose characters lie inside an assistant span."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans, cursor = [], 0
    for message in messages:
        header = f"<|im_start|>{message['role']}\n"
        cursor = text.index(header, cursor) + len(header)
        body = assistant_text(message) if message["role"] == "assistant" else message["content"] + "<|im_end|>"
        assert text[cursor : cursor + len(body)] == body
        if message["role"] == "assistant":
            spans.append((cursor, cursor + len(body)))
        cursor += len(body)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [
        int(any(start <= begin and end <= stop for start, stop in spans))
        for begin, end in encoding["offset_mapping"]
    ]
    return mask, text


def test_assistant_mask_covers_exactly_the_assistant_turns(tokenizer, conversations):
    assert any(any(m.get("tool_calls") for m in messages) for messages in conversations)
    for messages in conversations:
        encoded = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        mask = list(encoded["assistant_masks"])
        expected, text = expected_mask(tokenizer, messages)
        assert mask == expected
        assert tokenizer.unk_token_id not in encoded["input_ids"]
        # the masked tokens decode to the assistant turns, in order, and to nothing else
        ids = encoded["input_ids"]
        trained = [ids[i] for i in range(len(ids)) if mask[i]]
        assistants = [assistant_text(m) for m in messages if m["role"] == "assistant"]
        expected_ids = [i for part in assistants for i in tokenizer(part, add_special_tokens=False)["input_ids"]]
        assert trained == expected_ids
        runs = sum(1 for i, bit in enumerate(mask) if bit and (i == 0 or not mask[i - 1]))
        assert runs == len(assistants)
        observations = [m["content"] for m in messages if m["content"].startswith("Observation:")]
        for observation in observations:  # observation tokens carry no loss
            first = tokenizer(observation, add_special_tokens=False)["input_ids"][0]
            positions = [i for i, token in enumerate(ids) if token == first]
            assert positions and all(not mask[i] for i in positions)


@pytest.mark.slow
def test_lora_step_lowers_loss_on_exported_data(tokenizer, conversations):
    torch.manual_seed(0)
    batch = [
        tokenizer.apply_chat_template(m, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        for m in conversations
    ]
    window = 128  # the opening of each episode keeps the CPU step quick
    batch = [{key: list(item[key])[:window] for key in ("input_ids", "assistant_masks")} for item in batch]
    length = max(len(item["input_ids"]) for item in batch)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(batch), length), pad)
    labels = torch.full((len(batch), length), -100)
    attention = torch.zeros((len(batch), length), dtype=torch.long)
    for row, item in enumerate(batch):
        ids = torch.tensor(item["input_ids"])
        mask = torch.tensor(item["assistant_masks"], dtype=torch.bool)
        input_ids[row, : len(ids)] = ids
        attention[row, : len(ids)] = 1
        labels[row, : len(ids)] = torch.where(mask, ids, torch.tensor(-100))
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max(512, length),
        pad_token_id=pad,
        initializer_range=0.2,  # logits on a usable scale, so a frozen random lm_head does not cap the loss
    )
    model = transformers.LlamaForCausalLM(config)
    lora = peft.LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    model = lora_model(peft, model, lora)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and sum(p.numel() for p in trainable) < sum(p.numel() for p in model.parameters()) / 2
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.01)
    model.train()
    losses = []
    for _ in range(20):
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
