"""Issue 18, items 5 to 7: one step clock that counts every thread, on both sides.

A step's time is the larger of its CPU time in all its threads and its wall
time less tool calls and waiting for a CPU (``sandboxes/_clock.py``). These
tests drive real kernels. Where they need load, the load is made on one CPU:
a neighbouring kernel's threads pin themselves there and so does the step under
test, so the step gets a known fraction of that CPU whatever the machine.
Assertions are on CPU time the step itself reports, not on wall time.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
from pathlib import Path

import psutil
import pytest
from polling import async_wait_until

from opaque_knapsack.sandboxes import Kernel, _clock, protocol, step_channel

SEMANTICS = ["persistent", "stateless"]
CPU = min(os.sched_getaffinity(0))


def _busy_threads(count: int) -> str:
    """Code that starts COUNT threads hashing a 4 MiB buffer (hashlib releases the GIL) until ``stop``."""
    return f"""
import hashlib, threading, time
buf = b'x' * (1 << 22)
stop = []
def work():
    while not stop:
        hashlib.sha256(buf).digest()
t0 = time.process_time()
threads = [threading.Thread(target=work, daemon=True) for _ in range({count})]
for t in threads:
    t.start()
"""


# 16 threads that release the GIL, the main thread hashing too.
THREADED = _busy_threads(16) + """
try:
    while True:
        hashlib.sha256(buf).digest()
except BaseException as exc:
    stop.append(1)
    for t in threads:
        t.join()
    print(type(exc).__name__, round(time.process_time() - t0, 2))
"""


@pytest.mark.parametrize("semantics", SEMANTICS)
async def test_a_step_in_sixteen_threads_gets_step_timeout_at_its_cpu_limit(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    await kernel.run_code("kept = 1")
    result = await kernel.run_code(THREADED, timeout=2)
    # The kernel's StepTimeout, raised in the code (which reports the CPU it used), not the harness's kill.
    assert result.error is None, result.error
    name, cpu = result.stdout.split()
    assert name == "StepTimeout"
    assert 1.5 <= float(cpu) < 3.5, f"{cpu} CPU-seconds under a 2 s limit"
    assert not result.kernel_restarted
    if semantics == "persistent":
        assert (await kernel.run_code("print(kept)")).stdout == "1\n"


# The same threads, and a main thread that hashes too and swallows StepTimeout: only the harness can stop it.
STUBBORN = """
import hashlib, threading
buf = b'x' * (1 << 22)
def work():
    while True:
        hashlib.sha256(buf).digest()
for _ in range(16):
    threading.Thread(target=work, daemon=True).start()
while True:
    try:
        work()
    except BaseException:
        pass
"""


def _reaped_cpu(kernel: Kernel) -> float:
    """CPU of the step processes the kernel process has reaped: all their threads, to the tick."""
    assert kernel.control.pid is not None
    times = psutil.Process(kernel.control.pid).cpu_times()
    return times.children_user + times.children_system


@pytest.mark.parametrize("semantics", SEMANTICS)
async def test_the_harness_stops_a_threaded_step_at_its_cpu_limit_plus_grace(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    before = _reaped_cpu(kernel)
    step_pid = kernel.control.process_ids()[-1] if semantics == "persistent" else None
    result = await kernel.run_code(STUBBORN, timeout=1)
    assert result.timed_out and result.error is not None and "killed" in result.error.message
    assert result.kernel_restarted == (semantics == "persistent")
    # the killed step process, reaped by its kernel process, has added its CPU to the kernel's children
    assert await async_wait_until(lambda: _reaped_cpu(kernel) > before), "the step process was never reaped"
    if step_pid is not None:
        assert await async_wait_until(lambda: not psutil.pid_exists(step_pid))
    cpu = _reaped_cpu(kernel) - before
    # killed at limit + grace (1 s + 1 s) of the step's time: its CPU in every thread counts
    assert 1.5 <= cpu < 4.0, f"{cpu} CPU-seconds under a 1 s limit"


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


LEAVE_THREADS = _busy_threads(4) + """
print('left', len(threads))
"""


RUN_AGAIN = """
import time
t, end = time.process_time(), time.monotonic() + 20
while time.process_time() - t < 0.2 and time.monotonic() < end:
    time.sleep(0.05)
busy = time.process_time() - t
stop.append(1)
for t in threads:
    t.join()
print(busy >= 0.2)
"""


@pytest.mark.parametrize("semantics", SEMANTICS)
async def test_threads_left_behind_burn_no_cpu_between_steps(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    result = await kernel.run_code(LEAVE_THREADS)
    assert result.stdout == "left 4\n"
    pids = kernel.control.process_ids()
    before = _cpu(pids)
    await asyncio.sleep(3)
    idle = _cpu(pids) - before
    assert idle < 0.1, f"{idle:.2f} CPU-seconds burnt in 3 s while no step ran"
    if semantics == "persistent":
        # The threads are the step's state: the next step finds them and they run again.
        # (they get a CPU when the machine lets them: wait for their CPU time to grow, up to 20 s)
        again = await kernel.run_code(RUN_AGAIN)
        assert again.error is None and again.stdout == "True\n", again
    else:
        assert (await kernel.run_code("print('fresh')")).stdout == "fresh\n"


# ---- load must not change a figure ----------------------------------------------------------

NEIGHBOUR_THREADS = 3

NEIGHBOUR = f"""
import hashlib, os, threading
buf = b'x' * (1 << 22)
stop = []
def work(i):
    os.sched_setaffinity(0, {{{CPU}}})
    open(f'ready{{i}}', 'w').close()
    while not stop:
        hashlib.sha256(buf).digest()
threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range({NEIGHBOUR_THREADS})]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


@contextlib.asynccontextmanager
async def busy_neighbour(make_kernel):  # type: ignore[no-untyped-def]
    """Another sample's kernel running busy threads pinned to one CPU, for as long as the block runs."""
    neighbour: Kernel = await make_kernel("persistent")
    task = asyncio.create_task(neighbour.run_code(NEIGHBOUR, timeout=300))
    ready = lambda: sum(name.startswith("ready") for name in os.listdir(neighbour.control.workdir)) == NEIGHBOUR_THREADS  # noqa: E731
    try:
        assert await async_wait_until(ready), "the neighbour's threads never started"
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        neighbour.kill()


WELL_BEHAVED = f"""
import os, time
os.sched_setaffinity(0, {{{CPU}}})
t0 = time.process_time()
while time.process_time() - t0 < 1.5:
    pass
print('done')
"""


@pytest.mark.parametrize("semantics", SEMANTICS)
async def test_a_step_starved_by_a_busy_neighbour_still_gets_its_time(make_kernel, semantics: str) -> None:
    # The tightest ceiling the runtime allows: even then a step is never stopped for time it waited for a CPU.
    kernel = await make_kernel(semantics, step_ceiling_factor=1.0)
    async with busy_neighbour(make_kernel):
        result = await kernel.run_code(WELL_BEHAVED, timeout=3)
    assert result.error is None, (result.error, result.wall_time)
    assert result.stdout == "done\n"
    assert result.wall_time > 4.0, "the step was not starved: the test proves nothing"


SPIN = f"import os\nos.sched_setaffinity(0, {{{CPU}}})\nwhile True:\n    pass"


@pytest.mark.parametrize("semantics", SEMANTICS)
async def test_under_load_the_kernels_step_timeout_comes_before_the_harness_kill(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics, step_ceiling_factor=2.0)
    await kernel.run_code("kept = 1")
    async with busy_neighbour(make_kernel):
        result = await kernel.run_code(SPIN, timeout=2)
    assert result.timed_out and result.error is not None and result.error.type == "StepTimeout"
    assert "killed" not in result.error.message, "the harness killed the step: its state was lost"
    assert not result.kernel_restarted
    assert result.wall_time > 3.0, "the step was not starved: the test proves nothing"
    if semantics == "persistent":
        assert (await kernel.run_code("print(kept)")).stdout == "1\n"


# ---- item 7: a C-level loop cannot receive StepTimeout ------------------------------------


@pytest.mark.parametrize("semantics", SEMANTICS)
async def test_a_c_level_loop_is_killed_at_limit_plus_grace(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    await kernel.run_code("kept = 1")
    result = await kernel.run_code("sum(range(10**12))", timeout=1)
    assert result.timed_out and result.error is not None and "killed" in result.error.message
    # the harness's clock: 1 s limit + 1 s grace of the step's own time (one busy thread: its CPU time)
    assert 1.9 <= result.wall_time < 20.0
    if semantics == "persistent":
        assert result.kernel_restarted
        assert (await kernel.run_code("kept")).is_name_error


# ---- one definition, on both sides ----------------------------------------------------------


def test_a_steps_time_is_the_larger_of_its_cpu_and_its_uncredited_wall_time(tmp_path) -> None:
    schedstat = tmp_path / "schedstat"
    schedstat.write_text("0 1000000000 1\n")  # 1 s waited for a CPU so far
    cpu = [5.0]
    fd = os.open(schedstat, os.O_RDONLY)
    try:
        clock = _clock.StepClock(lambda: cpu[0], fd)
        clock.start(10.0)
        t0 = clock.started
        assert clock.used(t0) == 0.0
        schedstat.write_text("0 3000000000 1\n")  # 2 s more waited
        cpu[0] = 6.0  # 1 CPU-second
        clock.pause(t0 + 1.0, t0 + 2.5, now=t0 + 3.0)  # a tool call: 1.5 s of the harness's time
        assert clock.used(t0 + 8.0) == pytest.approx(8.0 - 1.5 - 2.0)
        cpu[0] = 5.0 + 7.0  # 7 CPU-seconds in threads: the CPU term is larger
        assert clock.used(t0 + 8.0) == pytest.approx(7.0)
        # a call in flight is paused up to now; an answer stamped in the future counts up to now
        clock.call_sent = t0 + 8.0
        cpu[0] = 6.0
        assert clock.used(t0 + 9.0) == pytest.approx(8.0 - 1.5 - 2.0)
        clock.pause(t0 + 8.0, t0 + 99.0, now=t0 + 9.0)
        assert clock.paused == pytest.approx(2.5) and clock.call_sent is None
        # a reading that fails keeps the last good one
        cpu[0] = None  # type: ignore[call-overload]
        assert clock.used(t0 + 9.0) == pytest.approx(9.0 - 2.5 - 2.0)
    finally:
        os.close(fd)


def test_the_harness_reads_a_step_process_cpu_in_all_its_threads() -> None:
    import threading
    import time

    clock_id = _clock.process_cpu_clock(os.getpid())
    before = _clock.process_cpu(clock_id)
    assert before is not None and abs(before - time.process_time()) < 0.05
    stop = time.process_time() + 0.2

    def spin() -> None:
        while time.process_time() < stop:
            pass

    thread = threading.Thread(target=spin)
    thread.start()
    thread.join()
    after = _clock.process_cpu(clock_id)
    assert after is not None and after - before >= 0.2


def test_the_kernel_and_the_harness_share_the_one_clock() -> None:
    kernel_source = (Path(_clock.__file__).parent / "_kernel.py").read_text()
    tree = ast.parse(kernel_source)
    assert not [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and "Clock" in n.name]
    assert "_clock.StepClock(" in kernel_source
    assert step_channel.StepClock is _clock.StepClock
    # the pause the harness stamps on its answer is the pause the kernel reads
    assert "answered_at" in protocol.ToolReply.model_fields and "answered_at" in kernel_source
