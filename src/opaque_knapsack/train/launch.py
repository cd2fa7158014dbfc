"""Launching Axolotl training and a vLLM server for the students.

Both need a CUDA GPU and an optional extra (``train``: axolotl, peft,
bitsandbytes, transformers; ``serve``: vllm). Nothing here imports them: the
commands run as subprocesses, and what is missing is found with
``importlib.util.find_spec`` and a lazy ``torch.cuda.is_available()``, so the
package imports and ``--dry-run`` work on any machine.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LaunchError",
    "ServeSpec",
    "TRAIN_MODULES",
    "SERVE_MODULES",
    "cuda_available",
    "missing_modules",
    "train_command",
    "serve_command",
    "eval_hints",
    "check_ready",
    "run_command",
]

TRAIN_MODULES = ("axolotl", "peft", "bitsandbytes", "transformers", "torch")
SERVE_MODULES = ("vllm",)
DEFAULT_MAX_MODEL_LEN = 40960
DEFAULT_MAX_LORA_RANK = 64
THINKING_OFF = {"enable_thinking": False}


class LaunchError(RuntimeError):
    """The command cannot run here; the message says what is missing."""


def missing_modules(modules: Sequence[str]) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def check_ready(
    modules: Sequence[str],
    extra: str,
    what: str,
    *,
    find_missing: Callable[[Sequence[str]], list[str]] | None = None,
    has_gpu: Callable[[], bool] | None = None,
) -> None:
    """Raise LaunchError naming the missing extra, or the missing GPU."""
    find_missing = find_missing or missing_modules
    has_gpu = has_gpu or cuda_available
    missing = find_missing(modules)
    if missing:
        raise LaunchError(
            f"{what} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'opaque-knapsack[{extra}]'"
        )
    if not has_gpu():
        raise LaunchError(f"{what} needs a CUDA GPU, and none is visible here (torch.cuda.is_available() is False)")


def train_command(config: str | Path, extra_args: Sequence[str] = ()) -> list[str]:
    """``axolotl train CONFIG`` (Axolotl's own CLI; it handles accelerate launch)."""
    return ["axolotl", "train", str(config), *extra_args]


@dataclass
class ServeSpec:
    """One vLLM server: a base model in bf16 with named LoRA adapters."""

    base_model: str
    loras: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    max_lora_rank: int = DEFAULT_MAX_LORA_RANK
    api_key: str | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def parse_lora(text: str) -> tuple[str, str]:
    """``NAME=PATH`` for one adapter. Names are bare (no '/' or ':') so Inspect's
    vLLM provider treats ``vllm/BASE:NAME`` as an adapter already on the server."""
    name, separator, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not separator or not name or not path:
        raise LaunchError(f"--lora {text!r} is not NAME=PATH")
    if "/" in name or ":" in name or "@" in name:
        raise LaunchError(f"--lora name {name!r} must not contain '/', ':' or '@'")
    return name, path


def serve_command(spec: ServeSpec) -> list[str]:
    """``vllm serve`` in bf16, 40k context, thinking off by default, LoRAs by name."""
    command = [
        "vllm",
        "serve",
        spec.base_model,
        "--dtype",
        "bfloat16",
        "--max-model-len",
        str(spec.max_model_len),
        "--host",
        spec.host,
        "--port",
        str(spec.port),
        "--default-chat-template-kwargs",
        json.dumps(THINKING_OFF),
    ]
    if spec.loras:
        command += [
            "--enable-lora",
            "--max-lora-rank",
            str(spec.max_lora_rank),
            "--max-loras",
            str(len(spec.loras)),
            "--lora-modules",
            *(f"{name}={path}" for name, path in spec.loras.items()),
        ]
    if spec.api_key:
        command += ["--api-key", spec.api_key]
    return command + list(spec.extra_args)


def eval_hints(spec: ServeSpec) -> str:
    """How to evaluate against this server with Inspect's vLLM or openai-api provider."""
    key = spec.api_key or "inspectai"
    lines = [
        "Evaluate the served models with Inspect's vLLM provider:",
        f"  export VLLM_BASE_URL={spec.base_url}",
        f"  export VLLM_API_KEY={key}",
        f"  --model vllm/{spec.base_model}    (the base model)",
    ]
    lines += [f"  --model vllm/{spec.base_model}:{name}    (LoRA '{name}')" for name in spec.loras]
    lines += [
        "or through the OpenAI-compatible provider:",
        f"  export STUDENT_BASE_URL={spec.base_url}",
        f"  export STUDENT_API_KEY={key}",
        f"  --model openai-api/student/{spec.base_model}",
    ]
    lines += [f"  --model openai-api/student/{name}" for name in spec.loras]
    lines.append("Thinking is off by default on this server (--default-chat-template-kwargs).")
    return "\n".join(lines)


def format_command(command: Sequence[str]) -> str:
    return shlex.join(command)


def run_command(command: Sequence[str]) -> int:
    """Run in the foreground, passing the terminal through; returns the exit code."""
    executable = shutil.which(command[0])
    if executable is None:
        raise LaunchError(f"'{command[0]}' is not on PATH (is its extra installed in this environment?)")
    try:
        return subprocess.run([executable, *command[1:]], check=False).returncode
    except KeyboardInterrupt:
        print(f"{command[0]}: interrupted", file=sys.stderr)
        return 130
