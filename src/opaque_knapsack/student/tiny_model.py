"""A tiny Qwen3-architecture base model, built locally, for the student half on CPU.

The student half of the loop (Axolotl -> vLLM with LoRA -> Inspect) needs a
base model, and this project's machines have no GPU and no hub. So the
package builds one: a Qwen3 causal LM (hidden 256, 4 layers, about 7 M
parameters) with random weights, and a byte-level BPE tokenizer trained with
``tokenizers`` on the traces it will be fine-tuned on. Every artifact of the
real run is produced by the real tools; only the scale differs, so the same
commands smoke-test a GPU setup before hours are spent on Qwen3-8B.

The chat template is the one the export's conversations are trained with and
the one vLLM serves: ChatML, each assistant turn opening with a think block
(the message's ``reasoning_content`` or ``reasoning``, empty when there is
none), and ``enable_thinking=False`` closing an empty think block in the
generation prompt, as Qwen3's template does. Training with thinking off and
serving with thinking off therefore see the same token layout. The assistant
body sits inside ``{% generation %}`` markers so ``apply_chat_template`` can
return the assistant-token mask.

The ``config.json`` is written with both the Transformers 5 keys
(``rope_parameters``, ``dtype``) and the older ones (``rope_theta``,
``torch_dtype``), and the tokenizer config names ``PreTrainedTokenizerFast``,
so the Axolotl and vLLM environments (which pin their own Transformers) read
the same model. Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opaque_knapsack.train.files import jsonl_records

__all__ = [
    "CHAT_TEMPLATE",
    "TinyModelError",
    "TinyModelSpec",
    "build_tiny_model",
    "corpus_texts",
]

EOS = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, "<|im_start|>", EOS]
# Visible markers: added as whole tokens but not "special", so they survive decoding.
MARKER_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n' }}{%- for tool in tools %}{{- tool | tojson }}{{- '\\n' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{%- if not (tools and loop.first) %}"
    "{{- '<|im_start|>system\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{%- set reasoning = message.get('reasoning_content') or message.get('reasoning') or '' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}"
    "{{- '<think>\\n' + (reasoning | trim) + '\\n</think>\\n\\n' + (message['content'] or '') }}"
    "{%- for call in message.get('tool_calls') or [] %}"
    "{%- set function = call['function'] if call.get('function') else call %}"
    "{{- '\\n<tool_call>\\n{\"name\": \"' + function['name'] + '\", \"arguments\": ' }}"
    "{%- if function['arguments'] is string %}{{- function['arguments'] }}"
    "{%- else %}{{- function['arguments'] | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>' }}"
    "{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


class TinyModelError(ValueError):
    """The model cannot be built as asked; the message names the input."""


class TinyModelSpec(BaseModel):
    """Shape of the tiny base model (Qwen3 architecture)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, ge=0, description="Seeds the weights; the tokenizer depends only on the corpus.")
    vocab_size: int = Field(default=8192, ge=512, description="Target BPE vocabulary (reached only on a large corpus).")
    hidden_size: int = Field(default=256, ge=32)
    num_hidden_layers: int = Field(default=4, ge=1)
    num_attention_heads: int = Field(default=4, ge=1)
    num_key_value_heads: int = Field(default=2, ge=1)
    head_dim: int = Field(default=64, ge=8)
    intermediate_size: int = Field(default=1536, ge=32)
    max_position_embeddings: int = Field(
        default=40960, ge=256, description="Covers the serve context (vLLM refuses a longer --max-model-len)."
    )
    initializer_range: float = Field(default=0.02, gt=0)


def corpus_texts(traces: Sequence[str | Path]) -> Iterator[str]:
    """The text of every message in exported traces (JSONL) or Inspect logs (exported on the fly)."""
    for source in traces:
        path = Path(source)
        if not path.exists():
            raise TinyModelError(f"{path}: no such traces file or log directory")
        if path.is_file() and path.suffix == ".jsonl":
            yield from _jsonl_texts(path)
        else:
            yield from _log_texts(path)


def _jsonl_texts(path: Path) -> Iterator[str]:
    for _number, record in jsonl_records(path, TinyModelError):
        messages = record.get("messages") or record.get("conversations") or []
        for message in messages:
            text = message.get("content", message.get("value"))
            if isinstance(text, str) and text:
                yield text
            for key in ("reasoning_content", "reasoning"):
                if isinstance(message.get(key), str) and message[key]:
                    yield message[key]


def _log_texts(path: Path) -> Iterator[str]:
    import tempfile

    from opaque_knapsack.train.export import ExportError, export_traces

    with tempfile.TemporaryDirectory(prefix="tiny-corpus-") as scratch:
        out = Path(scratch) / "corpus.jsonl"
        try:
            export_traces([path], out)
        except ExportError as error:
            raise TinyModelError(f"{path}: {error}") from None
        yield from list(_jsonl_texts(out))


def train_tokenizer(texts: Iterable[str], spec: TinyModelSpec, max_length: int) -> Any:
    """A byte-level BPE tokenizer trained on the corpus, wrapped with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts)
    if not texts:
        raise TinyModelError("the traces hold no message text to train the tokenizer on")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=EOS, pad_token=PAD, model_max_length=max_length, clean_up_tokenization_spaces=False
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.add_tokens(MARKER_TOKENS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(out: str | Path, traces: Sequence[str | Path], spec: TinyModelSpec | None = None) -> dict[str, Any]:
    """Write the model, tokenizer and chat template to OUT; returns what was built."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    spec = spec or TinyModelSpec()
    if spec.num_attention_heads % spec.num_key_value_heads:
        raise TinyModelError("num_attention_heads must be a multiple of num_key_value_heads")
    out = Path(out)
    tokenizer = train_tokenizer(corpus_texts(traces), spec, spec.max_position_embeddings)
    vocab = _padded(len(tokenizer))
    config = Qwen3Config(
        # the spec's shape fields are Qwen3Config's own, by name; the vocabulary is the tokenizer's, padded
        **spec.model_dump(exclude={"seed", "vocab_size"}),
        vocab_size=vocab,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(spec.seed)
    model = Qwen3ForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _portable_config(out / "config.json")
    _portable_tokenizer_config(out / "tokenizer_config.json")
    parameters = sum(p.numel() for p in model.parameters())
    summary = {
        "path": str(out),
        "parameters": parameters,
        "vocab_size": vocab,
        "tokenizer_tokens": len(tokenizer),
        "max_position_embeddings": spec.max_position_embeddings,
        "seed": spec.seed,
        "weights_sha256": _sha256(out / "model.safetensors"),
        "tokenizer_sha256": _sha256(out / "tokenizer.json"),
    }
    (out / "opaque_knapsack_tiny.json").write_text(
        json.dumps({"spec": spec.model_dump(), **summary, "path": None}, indent=2) + "\n", encoding="utf-8"
    )
    return summary


def _padded(size: int, multiple: int = 64) -> int:
    """Vocabulary rounded up, so embedding shapes are friendly to the kernels."""
    return -(-size // multiple) * multiple


def _portable_config(path: Path) -> None:
    """Add the pre-Transformers-5 spellings next to the new ones."""
    data = json.loads(path.read_text(encoding="utf-8"))
    rope = data.get("rope_parameters") or {}
    data.setdefault("rope_theta", rope.get("rope_theta", 10000.0))
    data.setdefault("rope_scaling", None)
    data["torch_dtype"] = data.get("dtype", "float32")
    data["architectures"] = ["Qwen3ForCausalLM"]
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _portable_tokenizer_config(path: Path) -> None:
    """Name a tokenizer class every Transformers release knows, and inline the template."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokenizer_class"] = "PreTrainedTokenizerFast"
    data["chat_template"] = CHAT_TEMPLATE
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_elsewhere(python: str, out: Path, traces: Sequence[Path], spec: TinyModelSpec | None = None) -> dict[str, Any]:
    """Build the model with another environment's PYTHON (one with torch), from here, which needs none.

    Inspect logs among TRACES are exported to JSONL here first (that Python has
    no Inspect). That Python imports this package alone, through a folder
    holding a link to it: the folder the package is installed in would put
    the harness's other packages ahead of that environment's own.
    """
    import os
    import subprocess
    import tempfile

    import opaque_knapsack

    spec = spec or TinyModelSpec()
    with tempfile.TemporaryDirectory(prefix="tiny-model-") as scratch:
        files = [str(_as_jsonl(Path(trace), Path(scratch), number)) for number, trace in enumerate(traces)]
        link_root = Path(scratch) / "path"
        link_root.mkdir()
        os.symlink(Path(opaque_knapsack.__file__).parent, link_root / "opaque_knapsack")
        command = [python, "-m", "opaque_knapsack.student.tiny_model", "--out", str(out), "--seed", str(spec.seed),
                   "--vocab-size", str(spec.vocab_size), "--max-position-embeddings", str(spec.max_position_embeddings)]
        command += [argument for file in files for argument in ("--traces", file)]
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(PYTHONPATH=str(link_root), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        except OSError as error:
            raise TinyModelError(f"{python}: cannot run it ({error.strerror})") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TinyModelError(f"building the model with {python} failed: {last}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _as_jsonl(path: Path, scratch: Path, number: int) -> Path:
    """PATH itself when it is exported traces, else its logs exported to JSONL in SCRATCH."""
    if not path.exists():
        raise TinyModelError(f"{path}: no such traces file or log directory")
    if path.is_file() and path.suffix == ".jsonl":
        return path
    from opaque_knapsack.train.export import ExportError, export_traces

    out = scratch / f"corpus-{number}.jsonl"
    try:
        export_traces([path], out)
    except ExportError as error:
        raise TinyModelError(f"{path}: {error}") from None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m opaque_knapsack.student.tiny_model``: build it in whatever Python runs this (one with torch).

    The study runs this in the training environment, which has torch; the
    harness's own environment needs none. Prints the summary as JSON.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m opaque_knapsack.student.tiny_model")
    parser.add_argument("--out", required=True)
    parser.add_argument("--traces", action="append", default=[], required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--max-position-embeddings", type=int, default=40960)
    args = parser.parse_args(argv)
    spec = TinyModelSpec(
        seed=args.seed, vocab_size=args.vocab_size, max_position_embeddings=args.max_position_embeddings
    )
    try:
        summary = build_tiny_model(args.out, args.traces, spec)
    except TinyModelError as error:
        print(f"tiny-model: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
