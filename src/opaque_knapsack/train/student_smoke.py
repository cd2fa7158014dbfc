"""``opaque-knapsack student-smoke``: the whole student half, for real, on a CPU.

teacher traces (the quickstart's scripted policies) -> export -> a tiny
Qwen3-architecture base model built here -> Axolotl trains a persistent and a
stateless LoRA adapter -> vLLM (the CPU build) serves the base and both
adapters -> the 2x2 plus the base model through Inspect's vLLM provider ->
the reports. Every artifact is the real tool's; only the scale is small. The
figures will be near zero (a 7 M-parameter student does not solve the task):
the point is that the chain runs end to end.

Two checks are made on what Axolotl did, since they are what training means:
the training loss falls, and the tokens Axolotl trains on (labels other than
-100 in its prepared dataset) all lie inside assistant turns, and every
assistant turn has some. Each stage's time is printed as it ends.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opaque_knapsack.records import RUNTIMES
from opaque_knapsack.train.launch import LaunchError

__all__ = [
    "SmokeError",
    "SmokeOptions",
    "run_student_smoke",
    "loss_curve",
    "check_loss_falls",
    "check_assistant_mask",
    "assistant_regions",
]

BASE_NAME = "tiny-base"

# Dumps Axolotl's prepared rows (input_ids, labels) as JSON lines; runs in the student-train environment.
_DUMP_PREPARED = """
import json, sys
from pathlib import Path
from datasets import load_from_disk
root, out, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
folders = sorted({p.parent for p in root.rglob("dataset_info.json")})
if not folders:
    sys.exit(f"no prepared dataset under {root}")
rows = load_from_disk(str(folders[0]))
with out.open("w") as stream:
    for row in rows.select(range(min(limit, len(rows)))):
        stream.write(json.dumps({"input_ids": list(row["input_ids"]), "labels": list(row["labels"])}) + "\\n")
"""


class SmokeError(RuntimeError):
    """A stage of the smoke run failed; the message names the stage and its log."""


@dataclass
class SmokeOptions:
    """How big the smoke run is, and where things go."""

    out: Path
    envs_root: Path | None = None
    teacher_num: int = 20
    num: int = 2
    max_steps: int = 30
    max_turns: int = 4
    max_tokens: int = 256
    max_model_len: int = 8192
    ready_timeout: float = 900.0
    echo: Callable[[str], None] = print
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def stage(options: SmokeOptions, name: str) -> Iterator[None]:
    """Time one stage and print it; a failure names the stage."""
    options.echo(f"== {name} ...")
    start = time.monotonic()
    try:
        yield
    except (LaunchError, SmokeError) as error:
        raise SmokeError(f"{name}: {error}") from None
    seconds = time.monotonic() - start
    options.timings[name] = seconds
    options.echo(f"== {name}: {seconds:.0f}s")


def run_student_smoke(options: SmokeOptions) -> dict[str, Any]:
    """Every stage in order; returns the timings, the install sizes and where the artifacts are."""
    from opaque_knapsack.train.envs import ENVS, ensure_env

    out = options.out.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    envs = {}
    for name in ("student-train", "student-serve"):
        with stage(options, f"environment {name}"):
            envs[name] = ensure_env(ENVS[name], options.envs_root, log=out / "logs" / f"env-{name}.log")
            options.echo("   " + envs[name].line())
    with stage(options, "teacher traces (quickstart)"):
        teacher_logs = _teacher_logs(out / "teacher", options.teacher_num)
    traces: dict[str, Path] = {}
    with stage(options, "export"):
        for runtime in RUNTIMES:
            traces[runtime] = _export(teacher_logs[runtime], out / "traces" / f"{runtime}.jsonl", runtime)
    base = out / BASE_NAME
    with stage(options, "tiny model"):
        from opaque_knapsack.train.tiny_model import build_tiny_model

        summary = build_tiny_model(base, list(traces.values()))
        options.echo(f"   {summary['parameters']:,} parameters, vocabulary {summary['vocab_size']}")
    adapters: dict[str, Path] = {}
    losses: dict[str, list[float]] = {}
    for runtime in RUNTIMES:
        with stage(options, f"train {runtime} adapter (Axolotl)"):
            adapters[runtime], losses[runtime] = _train(runtime, traces[runtime], base, envs["student-train"].path, options)
            options.echo(f"   loss {losses[runtime][0]:.3f} -> {losses[runtime][-1]:.3f} over {len(losses[runtime])} logged steps")
    with stage(options, "assistant-only mask (Axolotl's prepared data)"):
        checked = _check_prepared_mask(out, base, envs["student-train"].path)
        options.echo(f"   {checked} prepared rows: labels only inside assistant turns, every turn trained")
    result: dict[str, Any] = {}
    with _served(out, base, adapters, envs["student-serve"].python, options) as spec:
        with stage(options, "2x2 + base through Inspect's vLLM provider"):
            result["logs"] = _matrix(spec, out / "matrix", options)
    with stage(options, "reports"):
        from opaque_knapsack.reports import write_quickstart_reports

        written = write_quickstart_reports(out / "matrix", out / "reports")
        options.echo("   " + ", ".join(str(path) for path in written.values()))
    result.update(
        timings=dict(options.timings),
        envs={name: {"created": r.created, "seconds": r.seconds, "bytes": r.size_bytes} for name, r in envs.items()},
        losses=losses,
        adapters={name: str(path) for name, path in adapters.items()},
    )
    (out / "student-smoke.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return result


# -- teacher traces and export -------------------------------------------------------


def _teacher_logs(out: Path, num: int) -> dict[str, Path]:
    """The quickstart's aligned runs: scripted/persistent in the persistent runtime, and the stateless pair."""
    from opaque_knapsack.quickstart import quickstart

    logs = quickstart(out, num=num)
    found: dict[str, Path] = {}
    for log in logs:
        if log.status != "success":
            raise SmokeError(f"teacher run {log.location} ended {log.status}")
        policy = log.eval.model.split("/")[-1]
        runtime = log.eval.task_args.get("runtime")
        if policy == runtime:
            found[runtime] = Path(log.location)
    missing = [runtime for runtime in RUNTIMES if runtime not in found]
    if missing:
        raise SmokeError(f"no aligned teacher log for {', '.join(missing)} in {out / 'logs'}")
    return found


def _export(log: Path, out: Path, runtime: str) -> Path:
    from opaque_knapsack.train.export import ExportError, ExportOptions, export_traces

    try:
        export_traces([log], out, ExportOptions(runtime=runtime))  # type: ignore[arg-type]
    except ExportError as error:
        raise SmokeError(str(error)) from None
    return out


# -- training and its checks -------------------------------------------------------------


def _train(runtime: str, traces: Path, base: Path, env: Path, options: SmokeOptions) -> tuple[Path, list[float]]:
    from opaque_knapsack.train.axolotl_config import build_axolotl_config, write_axolotl_config
    from opaque_knapsack.train.launch import offline_env, resolve_axolotl

    out = options.out.resolve()
    adapter = out / "adapters" / runtime
    config, unknown = build_axolotl_config(
        traces,
        runtime,  # type: ignore[arg-type]
        str(base),
        profile="cpu-tiny",
        overrides={
            "output_dir": str(adapter),
            "dataset_prepared_path": str(out / "prepared" / runtime),
            "max_steps": options.max_steps,
        },
    )
    config_path = write_axolotl_config(config, out / "configs" / f"{runtime}.yaml", unknown)
    log = out / "logs" / f"train-{runtime}.log"
    command = [resolve_axolotl(str(env)), "train", str(config_path)]
    _run_logged(command, log, cwd=out, env=offline_env(command[0]))
    if not (adapter / "adapter_config.json").is_file():
        raise SmokeError(f"Axolotl wrote no adapter_config.json in {adapter} (see {log})")
    curve = loss_curve(log.read_text(encoding="utf-8", errors="replace"))
    check_loss_falls(curve, log)
    return adapter, curve


def _run_logged(command: Sequence[str], log: Path, *, cwd: Path, env: dict[str, str]) -> None:
    with log.open("w", encoding="utf-8") as stream:
        stream.write(f"$ {' '.join(command)}\n")
        stream.flush()
        code = subprocess.run(list(command), cwd=cwd, env=env, stdout=stream, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-12:])
        raise SmokeError(f"`{' '.join(command[:3])}` exited with status {code} (log {log}):\n{tail}")


_LOSS = re.compile(r"['\"]loss['\"]\s*:\s*['\"]?([0-9.eE+-]+)")


def loss_curve(log_text: str) -> list[float]:
    """The training losses the Trainer logged (``{'loss': ...}`` lines), in order."""
    return [float(match.group(1)) for match in _LOSS.finditer(log_text)]


def check_loss_falls(curve: Sequence[float], where: Path | str = "the training log") -> None:
    """The mean of the last quarter of logged losses is below the mean of the first quarter."""
    if len(curve) < 4:
        raise SmokeError(f"only {len(curve)} training losses logged in {where}; cannot tell whether the loss fell")
    quarter = max(1, len(curve) // 4)
    first, last = sum(curve[:quarter]) / quarter, sum(curve[-quarter:]) / quarter
    if not last < first:
        raise SmokeError(f"the training loss did not fall ({first:.3f} -> {last:.3f}) in {where}")


def assistant_regions(input_ids: Sequence[int], start_id: int, end_id: int, assistant_ids: Sequence[int]) -> list[range]:
    """Token positions of each assistant turn's body: after ``<|im_start|>assistant\\n``, through ``<|im_end|>``."""
    regions, header = [], [start_id, *assistant_ids]
    position = 0
    while position < len(input_ids):
        if list(input_ids[position : position + len(header)]) == header:
            begin = position + len(header)
            end = begin
            while end < len(input_ids) and input_ids[end] != end_id:
                end += 1
            if begin < len(input_ids):  # a turn cut off right after its header (truncation) has no body
                regions.append(range(begin, min(end + 1, len(input_ids))))
            position = end + 1
        else:
            position += 1
    return regions


def check_assistant_mask(rows: Sequence[dict[str, list[int]]], start_id: int, end_id: int, assistant_ids: Sequence[int]) -> None:
    """Every trained token (label != -100) is inside an assistant turn, and every assistant turn is trained."""
    if not rows:
        raise SmokeError("no prepared rows to check")
    for number, row in enumerate(rows):
        ids, labels = row["input_ids"], row["labels"]
        regions = assistant_regions(ids, start_id, end_id, assistant_ids)
        if not regions:
            raise SmokeError(f"prepared row {number} has no assistant turn")
        inside = {position for region in regions for position in region}
        trained = {position for position, label in enumerate(labels) if label != -100}
        outside = sorted(trained - inside)
        if outside:
            raise SmokeError(f"prepared row {number}: {len(outside)} trained tokens outside the assistant turns (first at {outside[0]})")
        untrained = [region for region in regions if not trained & set(region)]
        if untrained:
            raise SmokeError(f"prepared row {number}: an assistant turn at token {untrained[0].start} carries no loss")
        wrong = [position for position in trained if labels[position] != ids[position]]
        if wrong:
            raise SmokeError(f"prepared row {number}: labels differ from the input ids at {wrong[:3]}")


def _check_prepared_mask(out: Path, base: Path, env: Path) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    start_id, end_id = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assistant_ids = tokenizer("assistant\n", add_special_tokens=False)["input_ids"]
    total = 0
    for runtime in RUNTIMES:
        dump = out / "prepared" / f"{runtime}.rows.jsonl"
        command = [str(env / "bin" / "python"), "-c", _DUMP_PREPARED, str(out / "prepared" / runtime), str(dump), "50"]
        _run_logged(command, out / "logs" / f"prepared-{runtime}.log", cwd=out, env=dict(os.environ))
        rows = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines() if line.strip()]
        check_assistant_mask(rows, start_id, end_id, assistant_ids)
        total += len(rows)
    return total


# -- serving and the matrix -----------------------------------------------------------------


@contextmanager
def _served(out: Path, base: Path, adapters: dict[str, Path], python: Path, options: SmokeOptions) -> Iterator[Any]:
    from opaque_knapsack.train.launch import (
        ServeSpec,
        check_adapters,
        detect_vllm_build,
        offline_env,
        serve_command,
    )
    from opaque_knapsack.train.server import ServerProcess

    spec = ServeSpec(
        base_model=str(base),
        loras={name: str(path) for name, path in adapters.items()},
        port=_free_port(),
        max_model_len=options.max_model_len,
        served_model_name=BASE_NAME,
    )
    with stage(options, "serve (vLLM CPU, base + 2 adapters)"):
        build = detect_vllm_build(str(python))
        if build is None:
            raise SmokeError(f"{python}: no vLLM installed")
        check_adapters(spec.loras, spec.max_lora_rank)
        command = serve_command(spec, build)
        env = {**offline_env(command[0]), "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
        server = ServerProcess(command, env=env, log_path=out / "logs" / "serve.log")
        server.start()
        try:
            server.wait_ready(spec.base_url, [spec.model_name, *spec.loras], timeout=options.ready_timeout)
        except BaseException:
            server.stop()
            raise
        options.echo("   ready: " + " ".join(spec.inspect_models().values()))
    try:
        yield spec
    finally:
        started = time.monotonic()
        server.stop()
        if server.alive():
            raise SmokeError(f"the vLLM server's process group {server.pgid} outlived its stop")
        options.echo(f"== server stopped, no process left in its group ({time.monotonic() - started:.0f}s)")


def _matrix(spec: Any, log_dir: Path, options: SmokeOptions) -> list[str]:
    from opaque_knapsack.train.matrix import MatrixSpec, run_matrix

    students = {label: name for label, name in spec.inspect_models().items()}
    matrix = MatrixSpec(
        students=students,
        difficulties=["easy"],
        num=options.num,
        log_dir=str(log_dir),
        max_tokens=options.max_tokens,
        max_connections=4,
        retry_attempts=1,
        display="none",
        task_options={"max_turns": options.max_turns},
    )
    previous = {key: os.environ.get(key) for key in ("VLLM_BASE_URL", "VLLM_API_KEY")}
    os.environ["VLLM_BASE_URL"] = spec.base_url
    os.environ["VLLM_API_KEY"] = "inspectai"
    try:
        success, logs = run_matrix(matrix)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if not success:
        problems = [f"{log.location}: {log.status} {log.error.message if log.error else ''}" for log in logs if log.status != "success"]
        raise SmokeError("the matrix did not finish: " + "; ".join(problems))
    from inspect_ai.log import read_eval_log

    from opaque_knapsack.records import TRAIN_METADATA_KEY

    for header in logs:
        log = read_eval_log(header.location)
        train = (log.eval.metadata or {}).get(TRAIN_METADATA_KEY)
        if train not in students or log.eval.model != students[train]:
            raise SmokeError(f"{log.location}: student {train!r} with model {log.eval.model} is not one served")
        scored = sum(1 for sample in log.samples or [] if sample.scores and sample.error is None)
        if scored != options.num:
            raise SmokeError(f"{log.location}: {scored} of {options.num} samples scored")
        options.echo(f"   {train:>10} / {log.eval.task_args.get('runtime'):<10} {log.eval.model:<28} {scored} scored")
    return [str(log.location) for log in logs]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
