"""What the tests' stand-ins for outside programs share: executables written on the fly, the
arguments a vLLM server is started with, and whether a process they started still runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def write_executable(path: Path, text: str) -> Path:
    """An executable script at PATH (its folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def vllm_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of vLLM's OpenAI server that the fake servers answer by (the rest are ignored)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--served-model-name")
    parser.add_argument("--port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--lora-modules", nargs="*", default=[])
    args, _ = parser.parse_known_args(argv)
    return args


def process_alive(pid: int) -> bool:
    """Whether PID still runs (a zombie, finished but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())
