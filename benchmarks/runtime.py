"""Benchmark of the Python runtimes: kernel start-up, step overhead, tool-call round trip, memory.

Run: ``python benchmarks/runtime.py [--steps N] [--starts N]``. The baseline, measured in the
same run, is what a naive stateless runtime does: spawn a fresh ``python3 -c``
per step. Goals (2-core CI machine): persistent step p50 <= 1 ms; stateless
step p50 <= 5 ms and >= 5x faster than the baseline; tool call p50 <= 150 us;
<= 30 MB per kernel.

Kernel start-up (one per sample) is measured for both launchers: the zygote
(fork server, the default) and the old direct spawn of a fresh interpreter (the
baseline): latency until the first step process is ready, the longest time the
event loop was blocked during one start, and the CPU time one start costs in
all processes (harness, zygote, kernel, step process).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time

import psutil
from direct_launch import DirectLauncher

from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.sandboxes import Kernel, RuntimeConfig, probe_protection
from opaque_knapsack.sandboxes.launcher import ZYGOTE_LAUNCHER, KernelLauncher
from opaque_knapsack.sandboxes.registry import REGISTRY

LAUNCHERS: dict[str, KernelLauncher] = {"zygote": ZYGOTE_LAUNCHER, "direct": DirectLauncher()}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spawn_baseline(steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "1"], check=True, env={"PATH": "/usr/bin:/bin"})
        times.append(time.perf_counter() - started)
    return times


async def step_times(semantics: str, steps: int) -> list[float]:
    kernel = Kernel(SEMANTICS[semantics], RuntimeConfig())  # type: ignore[index]
    await kernel.start()
    try:
        for _ in range(20):
            await kernel.run_code("1")
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            result = await kernel.run_code("1")
            times.append(time.perf_counter() - started)
            assert result.error is None and result.stdout == "", result  # no echo of a bare expression (the paper's interpreter)
        return times
    finally:
        await kernel.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def startup_costs(launcher: str, count: int) -> tuple[list[float], float, float]:
    """Start-up latency of ``count`` sequential kernel starts, and CPU per kernel (harness; all others).

    The CPU is a kernel's whole life (start, one idle step process, close) in
    every process: kernels, step processes and the zygote (its own start
    included, spread over ``count + 1`` kernels) are all reaped into RUSAGE_CHILDREN.
    """
    await REGISTRY.zygote.stop_and_wait()
    latencies = []
    children_before, harness_before = _children_cpu(), time.process_time()
    for i in range(count + 1):
        kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig(), launcher=LAUNCHERS[launcher])
        started = time.perf_counter()
        await kernel.start()
        if i:  # the first start (the zygote's too) is in the CPU, not in the latencies
            latencies.append(time.perf_counter() - started)
        await kernel.close()
    await REGISTRY.zygote.stop_and_wait()
    harness = (time.process_time() - harness_before) / (count + 1)
    return latencies, harness, (_children_cpu() - children_before) / (count + 1)


async def startup_stalls(launcher: str, count: int) -> list[float]:
    """Longest event-loop stall (time between two turns of a spinning task) during each start."""
    stalls = []
    for _ in range(count):
        kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig(), launcher=LAUNCHERS[launcher])
        done = False
        worst = 0.0

        async def ticker() -> None:
            nonlocal worst
            last = time.perf_counter()
            while not done:  # noqa: B023 (set by the loop body once its run ends)
                await asyncio.sleep(0)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await kernel.start()
        done = True
        await tick
        stalls.append(worst)
        await kernel.close()
    return stalls


async def zygote_start_time() -> float:
    await REGISTRY.zygote.stop_and_wait()
    kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig())
    started = time.perf_counter()
    await kernel.start()
    elapsed = time.perf_counter() - started
    await kernel.close()
    return elapsed


_TOOL_BLOCK = """
import time
t = []
for i in range(1000):
    s = time.perf_counter()
    inspect('item_000000000001')
    t.append(time.perf_counter() - s)
t.sort()
print(t[500], t[990])
"""


async def tool_call_times(semantics: str) -> tuple[list[float], float]:
    # the block makes 1,000 calls, past the paper's 25 per block
    kernel = Kernel(SEMANTICS[semantics], RuntimeConfig(max_tool_calls=1000))  # type: ignore[index]
    await kernel.start()
    try:
        result = await kernel.run_code(_TOOL_BLOCK, {"inspect": lambda item_id: '{"value": 1}'})
        assert result.error is None, result.error
        p50, p99 = (float(x) for x in result.stdout.split())
        return [p50, p99], result.wall_time
    finally:
        await kernel.close()


def _memory(pids: list[int]) -> tuple[float, float, float]:
    rss = uss = pss = 0.0
    for pid in pids:
        info = psutil.Process(pid).memory_full_info()
        rss += info.rss
        uss += info.uss
        pss += info.pss
    mb = 1024 * 1024
    return rss / mb, uss / mb, pss / mb


async def kernel_memory(semantics: str, count: int) -> tuple[float, float, float]:
    kernels = [Kernel(SEMANTICS[semantics], RuntimeConfig()) for _ in range(count)]  # type: ignore[index]
    try:
        await asyncio.gather(*(k.start() for k in kernels))
        await asyncio.gather(*(k.run_code("import json\nx = list(range(1000))") for k in kernels))
        await asyncio.sleep(0.2)
        pids = [pid for k in kernels for pid in k.control.process_ids()]
        rss, uss, pss = _memory(pids)
        return rss / count, uss / count, pss / count
    finally:
        for k in kernels:
            await k.close()


def _row(name: str, values: list[float], unit: float = 1e3, suffix: str = "ms") -> str:
    return _fmt(name, _pct(values, 0.5), _pct(values, 0.99), unit, suffix)


def _fmt(name: str, p50: float, p99: float, unit: float, suffix: str) -> str:
    return f"| {name:<44} | {p50 * unit:9.3f} {suffix} | {p99 * unit:9.3f} {suffix} |"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300, help="steps per runtime measurement")
    parser.add_argument("--baseline-steps", type=int, default=40, help="python3 spawns for the baseline")
    parser.add_argument("--concurrent", type=int, default=100, help="kernels alive at once for the memory row")
    parser.add_argument("--starts", type=int, default=100, help="kernel starts per launcher for the start-up rows")
    args = parser.parse_args()

    protection = probe_protection()
    print(f"machine: {psutil.cpu_count()} cores, python {sys.version.split()[0]}, protection: {protection}")
    first_start = await zygote_start_time()
    direct_latency, direct_harness, direct_cpu = await startup_costs("direct", args.starts)
    zygote_latency, zygote_harness, zygote_cpu = await startup_costs("zygote", args.starts)
    direct_stall = await startup_stalls("direct", max(10, args.starts // 4))
    zygote_stall = await startup_stalls("zygote", max(10, args.starts // 4))
    baseline = spawn_baseline(args.baseline_steps)
    persistent = await step_times("persistent", args.steps)
    stateless = await step_times("stateless", args.steps)
    calls_p, _ = await tool_call_times("persistent")
    calls_s, _ = await tool_call_times("stateless")

    print()
    print(f"| {'measurement':<44} | {'p50':>12} | {'p99':>12} |")
    print(f"|{'-' * 46}|{'-' * 14}|{'-' * 14}|")
    print(_row("kernel start, direct spawn (old; baseline)", direct_latency))
    print(_row("kernel start, forked by the zygote", zygote_latency))
    print(_fmt("first kernel start (incl. starting the zygote)", first_start, first_start, 1e3, "ms"))
    print(_row("loop stall per kernel start, direct spawn", direct_stall))
    print(_row("loop stall per kernel start, zygote", zygote_stall))
    print(_row("baseline: fresh `python3 -c` per step", baseline))
    print(_row("persistent step (trivial block)", persistent))
    print(_row("stateless step (trivial block, fresh fork)", stateless))
    print(_fmt("tool call round trip, persistent (x1000)", *calls_p, 1e6, "us"))
    print(_fmt("tool call round trip, stateless (x1000)", *calls_s, 1e6, "us"))
    speedup = statistics.median(baseline) / statistics.median(stateless)
    print(f"\nstateless speed-up over the spawn baseline (p50): {speedup:.1f}x")
    print(f"kernel start-up with the zygote vs direct spawn (p50): "
          f"{statistics.median(direct_latency) / statistics.median(zygote_latency):.1f}x faster")

    print()
    print(f"| {f'CPU per kernel, start to close (mean of {args.starts})':<44} | {'harness':>10} | {'kernel side':>11} | {'total':>10} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 13}|{'-' * 12}|")
    for name, harness, others in (("direct spawn (old; baseline)", direct_harness, direct_cpu),
                                  ("forked by the zygote", zygote_harness, zygote_cpu)):
        print(f"| {name:<44} | {harness * 1e3:7.2f} ms | {others * 1e3:8.2f} ms | {(harness + others) * 1e3:7.2f} ms |")
    print("(kernel side: kernel, step and zygote processes, the zygote's own start spread over the kernels)")

    print()
    print(f"| {'memory per kernel (kernel + step processes)':<44} | {'RSS MB':>8} | {'USS MB':>8} | {'PSS MB':>8} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for semantics in ("persistent", "stateless"):
        rss, uss, pss = await kernel_memory(semantics, 1)
        print(f"| {semantics + ', one kernel':<44} | {rss:8.1f} | {uss:8.1f} | {pss:8.1f} |")
    rss, uss, pss = await kernel_memory("persistent", args.concurrent)
    print(f"| {f'persistent, mean of {args.concurrent} concurrent':<44} | {rss:8.1f} | {uss:8.1f} | {pss:8.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
