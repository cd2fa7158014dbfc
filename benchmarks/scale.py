"""A thousand concurrent episodes on one machine, against Inspect with no sandbox.

Runs, in this process:

- harness: ``opaque_knapsack/knapsack`` (easy) with NUM samples, all of them
  at once (``--max-samples``/``--max-connections`` CONCURRENCY), the scripted
  policy answering every turn after ``-M latency`` seconds (seeded jitter), so
  that, as with a served student, nearly every episode waits on a reply at once;
- baseline: Inspect's ``mockllm/model`` replaying exactly the conversations the
  harness produced, each reply after the same delay, with no sandbox, no tools
  and no scoring: what Inspect alone costs for the same episodes.

A monitor process samples the memory of the harness process and of every kernel
(the zygote's descendants: kernel and step processes), RSS every
``--sample-every`` seconds and USS (which reads every process's smaps: ~1 min of
CPU over a 1,000-kernel run at the old rate) every fifth sample. The ideal wall time is
the longest episode's own waiting: the sum of its replies' delays (turns x
latency), as if kernels, tools and Inspect cost nothing.

Both runs use the same documented Inspect options, named in the table's title:
``display="none"``, ``score_display=False`` and, with ``--no-log-realtime``,
``log_realtime=False`` (no live sample buffer for ``inspect view``). Before
either run is measured, one short episode of each is run unmeasured, so that
neither pays for the modules Inspect imports lazily on its first eval (the
harness ran first and paid for both before).

    python benchmarks/scale.py [--num 1000] [--concurrency 1000] [--latency 2] [--no-log-realtime]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("INSPECT_LOG_LEVEL", "error")
# Both runs use eval_async, which shows the "plain" display unless a display was
# chosen before it runs (see eval_with_lag).
os.environ["INSPECT_DISPLAY"] = "none"

import psutil  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

MIB = 1024 * 1024


# ---- the memory monitor (a separate process, so its work is not the harness's) ----


def _kernel_tree(harness: psutil.Process) -> list[psutil.Process]:
    """Every process under the harness's zygote (kernels and their step processes)."""
    found: list[psutil.Process] = []
    for child in harness.children():
        try:
            if "zygote" in child.cmdline():
                found += child.children(recursive=True)
        except psutil.Error:
            continue
    return found


def monitor(pid: int, out: str, every: float) -> None:
    harness = psutil.Process(pid)
    peak: dict[str, float] = dict.fromkeys(
        ("harness_rss", "harness_uss", "kernels_rss", "kernels_uss", "uss_per_kernel", "kernels_at_uss_peak", "max_kernels"),
        0.0,
    )
    tick = 0
    while harness.is_running() and harness.status() != psutil.STATUS_ZOMBIE:
        full = tick % 5 == 0
        tick += 1
        try:
            info = harness.memory_full_info() if full else harness.memory_info()
        except psutil.Error:
            break
        peak["harness_rss"] = max(peak["harness_rss"], info.rss)
        if full:
            peak["harness_uss"] = max(peak["harness_uss"], info.uss)
        rss = uss = 0
        kernels = 0
        for proc in _kernel_tree(harness):
            try:
                mem = proc.memory_full_info() if full else proc.memory_info()
            except psutil.Error:
                continue
            rss += mem.rss
            uss += getattr(mem, "uss", 0)
        try:
            kernels = sum(len(z.children()) for z in harness.children() if "zygote" in z.cmdline())
        except psutil.Error:
            pass
        peak["max_kernels"] = max(peak["max_kernels"], kernels)
        peak["kernels_rss"] = max(peak["kernels_rss"], rss)
        if full and uss > peak["kernels_uss"]:
            peak["kernels_uss"] = uss
            peak["kernels_at_uss_peak"] = kernels
        if full and kernels >= 10:
            peak["uss_per_kernel"] = max(peak["uss_per_kernel"], uss / kernels)
        Path(out).write_text(json.dumps(peak))
        time.sleep(every)


class Monitor:
    def __init__(self, every: float) -> None:
        self.file = tempfile.NamedTemporaryFile(prefix="scale-monitor-", suffix=".json", delete=False)
        self.file.close()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--monitor", str(os.getpid()), "--monitor-out", self.file.name,
             "--sample-every", str(every)]
        )

    def stop(self) -> dict[str, float]:
        self.proc.terminate()
        self.proc.wait(30)
        text = Path(self.file.name).read_text() or "{}"
        os.unlink(self.file.name)
        return json.loads(text)


# ---- the runs -------------------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def eval_with_lag(tasks: Any, **kwargs: Any) -> tuple[list[Any], list[float]]:
    """``eval_async`` in a loop of our own, with how late a 0.1 s timer fired in it, every 0.1 s.

    The lag is what every callback waits for the loop (a kernel's answer, a
    step's tool call, a model reply): the loop serves all samples on one core.
    """
    import asyncio

    from inspect_ai import eval_async
    from inspect_ai.util import display_type

    assert display_type() == kwargs.pop("display")  # chosen from INSPECT_DISPLAY, set at import

    async def run() -> tuple[list[Any], list[float]]:
        lags: list[float] = []

        async def tick() -> None:
            loop = asyncio.get_running_loop()
            while True:
                due = loop.time() + 0.1
                await asyncio.sleep(0.1)
                lags.append(max(0.0, loop.time() - due))

        ticker = asyncio.create_task(tick())
        try:
            logs = await eval_async(tasks, **kwargs)
        finally:
            ticker.cancel()
        return logs, lags

    return asyncio.run(run())


def inspect_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Inspect options both runs use (documented ``eval()`` arguments)."""
    options: dict[str, Any] = {"display": "none", "score_display": False}
    if args.no_log_realtime:
        options["log_realtime"] = False
    return options


def run_harness(args: argparse.Namespace, log_dir: str, num: int | None = None) -> dict[str, Any]:

    from opaque_knapsack.knapsack import knapsack
    from opaque_knapsack.sandboxes.registry import REGISTRY

    num = args.num if num is None else num
    REGISTRY.launch_stats.clear()
    monitor_ = Monitor(args.sample_every)
    cpu, started = _cpu(), time.perf_counter()
    [log], lags = eval_with_lag(
        knapsack(num=num, runtime=args.runtime, difficulty=args.difficulty),
        model=f"scripted/{args.style}",
        model_args={"latency": args.latency, "jitter": args.jitter, "seed": args.seed},
        log_dir=log_dir,
        max_samples=args.concurrency,
        max_connections=args.concurrency,
        fail_on_error=False,
        **inspect_options(args),
    )
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    memory = monitor_.stop()
    return {"log": log, "wall": wall, "cpu": cpu, "memory": memory, "lags": lags, "starts": list(REGISTRY.launch_stats.starts),
            "launches": list(REGISTRY.launch_stats.launches), "waits": list(REGISTRY.launch_stats.waits)}


def ideal_and_turns(log: Any, latency: float, jitter: float, seed: int) -> tuple[float, int, int]:
    """(the longest episode's summed reply delays, total turns, sample errors)."""
    from inspect_ai.model import ChatMessageAssistant

    from opaque_knapsack.models.scripted import _reply_key, reply_delay

    longest, turns, errors = 0.0, 0, 0
    for sample in log.samples or []:
        if sample.error is not None:
            errors += 1
        waited = 0.0
        for position, message in enumerate(sample.messages):
            if isinstance(message, ChatMessageAssistant):
                turns += 1
                waited += reply_delay(latency, jitter, seed, _reply_key(sample.messages[:position]))
        longest = max(longest, waited)
    return longest, turns, errors


def run_baseline(args: argparse.Namespace, log: Any, log_dir: str) -> dict[str, Any]:
    """mockllm replaying the harness's conversations, each reply after the same delay; no sandbox."""
    from eval_throughput import conversations_of, replay
    from inspect_ai import Task
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser
    from inspect_ai.scorer import match

    from opaque_knapsack.models.scripted import reply_delay

    episodes = conversations_of([log])
    conversations = {sample_id: turns for sample_id, turns, _ in episodes}
    systems = {f"0-{sample.id}": sample.messages[0].text for sample in log.samples}  # the same system prompt

    def latency(turn: int, state: Any) -> float:
        return reply_delay(args.latency, args.jitter, args.seed, f"{turn}\0{state.messages[1].text}")

    task = Task(
        name="replay",
        dataset=MemoryDataset([
            Sample(id=sample_id, input=[ChatMessageSystem(content=systems[sample_id]), ChatMessageUser(content=text)],
                   target="x")
            for sample_id, _, text in episodes
        ]),
        solver=replay(conversations, delay=latency),
        scorer=match(),
    )
    monitor_ = Monitor(args.sample_every)
    cpu, started = _cpu(), time.perf_counter()
    [base], lags = eval_with_lag(task, model="mockllm/model", log_dir=log_dir, max_samples=args.concurrency,
                          max_connections=args.concurrency, **inspect_options(args))
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    memory = monitor_.stop()
    assert base.status == "success", base.error
    return {"wall": wall, "cpu": cpu, "memory": memory, "lags": lags, "turns": sum(len(t) for _, t, _ in episodes)}


def warm_up(args: argparse.Namespace, log_dir: str) -> None:
    """One unmeasured episode of each run: Inspect's lazy imports are paid here, by neither."""
    warm = run_harness(args, log_dir, num=1)
    if not args.skip_baseline:
        run_baseline(args, warm["log"], log_dir)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=1000, help="episodes (default 1000)")
    parser.add_argument("--concurrency", type=int, default=1000, help="max samples and connections (default 1000)")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per reply (default 2)")
    parser.add_argument("--jitter", type=float, default=0.25, help="latency jitter fraction (default 0.25)")
    parser.add_argument("--seed", type=int, default=0, help="jitter seed (default 0)")
    parser.add_argument("--style", default="persistent", help="scripted policy (default persistent)")
    parser.add_argument("--runtime", default="persistent", help="runtime (default persistent)")
    parser.add_argument("--difficulty", default="easy", help="preset (default easy)")
    parser.add_argument("--sample-every", type=float, default=2.0, help="memory sampling interval, s (default 2)")
    parser.add_argument("--skip-baseline", action="store_true", help="run the harness only")
    parser.add_argument("--no-log-realtime", action="store_true",
                        help="both runs without Inspect's realtime sample buffer (log_realtime=False)")
    parser.add_argument("--monitor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--monitor-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.monitor:
        monitor(args.monitor, args.monitor_out, args.sample_every)
        return

    with tempfile.TemporaryDirectory() as log_dir:
        warm_up(args, log_dir)
        harness = run_harness(args, log_dir)
        log = harness["log"]
        ideal, turns, errors = ideal_and_turns(log, args.latency, args.jitter, args.seed)
        base = None if args.skip_baseline else run_baseline(args, log, log_dir)
    print_table(args, harness, base, ideal, turns, errors, log)


def _lag(lags: list[float]) -> str:
    if not lags:
        return "-"
    return f"{1000 * _pct(lags, 0.5):.0f} / {1000 * _pct(lags, 0.99):.0f} / {1000 * max(lags):.0f} ms"


def print_table(args: argparse.Namespace, harness: dict[str, Any], base: dict[str, Any] | None, ideal: float,
                turns: int, errors: int, log: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    mem, starts = harness["memory"], harness["starts"]
    scores = {s.name: s.metrics["mean"].value for s in (log.results.scores if log.results else []) if "mean" in s.metrics}
    table = Table(title=(
        f"{args.num} episodes, {args.concurrency} concurrent, {args.latency:g} s (+/-{args.jitter:.0%}) per reply, "
        f"scripted/{args.style} in the {args.runtime} runtime ({args.difficulty}); {os.cpu_count()} cores; "
        f"Inspect options of both runs: {', '.join(f'{k}={v!r}' for k, v in inspect_options(args).items())}"
    ))
    for column in ("", "harness", "baseline (mockllm replay, no sandbox)", "goal"):
        table.add_column(column, justify="right")
    b = base or {}
    bmem = b.get("memory", {})

    def mb(value: float | None) -> str:
        return "-" if value is None else f"{value / MIB:.0f} MB"

    rows = [
        ("sample errors", f"{errors} (status {log.status})", "0" if base else "-", "0"),
        ("turns", str(turns), str(b.get("turns", "-")), ""),
        ("wall time", f"{harness['wall']:.1f} s", f"{b['wall']:.1f} s" if base else "-", ""),
        ("ideal (longest episode: turns x latency)", f"{ideal:.1f} s", f"{ideal:.1f} s", ""),
        ("wall / ideal", f"{harness['wall'] / ideal:.2f}x", f"{b['wall'] / ideal:.2f}x" if base else "-", "<= 1.3x"),
        ("harness CPU per turn", f"{1000 * harness['cpu'] / max(turns, 1):.2f} ms",
         f"{1000 * b['cpu'] / max(b['turns'], 1):.2f} ms" if base else "-", ""),
        ("event loop lag p50 / p99 / max", _lag(harness["lags"]), _lag(b["lags"]) if base else "-", ""),
        ("harness CPU total", f"{harness['cpu']:.1f} s", f"{b['cpu']:.1f} s" if base else "-", ""),
        ("peak harness RSS / USS", f"{mb(mem.get('harness_rss'))} / {mb(mem.get('harness_uss'))}",
         f"{mb(bmem.get('harness_rss'))} / {mb(bmem.get('harness_uss'))}" if base else "-", ""),
        ("peak all kernels RSS / USS", f"{mb(mem.get('kernels_rss'))} / {mb(mem.get('kernels_uss'))}", "none", ""),
        ("peak live kernels", f"{mem.get('max_kernels', 0):.0f}", "none", ""),
        ("USS per live kernel (peak)", f"{mem.get('uss_per_kernel', 0) / MIB:.2f} MB", "none", "<= 4 MB"),
        ("kernel start to ready p50 / p99 (burst)", f"{1000 * _pct(starts, 0.5):.0f} / {1000 * _pct(starts, 0.99):.0f} ms",
         "none", "p99 <= 1000 ms"),
        ("first block's wait for its kernel p50 / p99", f"{1000 * _pct(harness['waits'], 0.5):.0f} / "
         f"{1000 * _pct(harness['waits'], 0.99):.0f} ms", "none", ""),
        ("zygote answer p50 / p99", f"{1000 * _pct(harness['launches'], 0.5):.0f} / "
         f"{1000 * _pct(harness['launches'], 0.99):.0f} ms", "none", ""),
        ("step timeouts / kernel restarts per episode",
         f"{scores.get('step_timeouts', float('nan')):.3f} / {scores.get('kernel_restarts', float('nan')):.3f}", "-", "0"),
        ("mean optimality", f"{scores.get('optimality', float('nan')):.3f}", "-", ""),
    ]
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
    if starts:
        print(f"kernel starts: {len(starts)}, mean {1000 * statistics.fmean(starts):.0f} ms, max {1000 * max(starts):.0f} ms")


if __name__ == "__main__":
    main()
