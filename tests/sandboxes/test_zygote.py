"""The zygote (fork server) that starts kernels: reuse, isolation, restart, cleanup."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from polling import async_wait_until

from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.sandboxes import Kernel, KernelError, RuntimeConfig, kill_all_kernels, launcher, probe_protection
from opaque_knapsack.sandboxes.launcher import KernelLauncher
from opaque_knapsack.sandboxes.registry import REGISTRY

from .conftest import kernel_processes, zygote_processes

SECRET = "sk-PLANTED-in-kernel-a-7781"


async def _close_all(kernels: list[Kernel]) -> None:
    for kernel in kernels:
        await kernel.close()


async def test_zygote_is_started_once_and_reused(make_kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await make_kernel("persistent")
    zygote_pid, starts = REGISTRY.zygote.pid, REGISTRY.zygote.starts
    assert first.control.launched_by == "zygote" and zygote_pid is not None
    # Warm: starting kernels spawns no process from the harness (no fork_exec on the loop).
    monkeypatch.setattr(subprocess, "Popen", None)
    kernels = await asyncio.gather(*(make_kernel("stateless" if i % 2 else "persistent") for i in range(8)))
    assert REGISTRY.zygote.pid == zygote_pid and REGISTRY.zygote.starts == starts
    for kernel in [first, *kernels]:
        assert kernel.control.launched_by == "zygote"
        assert psutil.Process(kernel.control.pid).ppid() == zygote_pid
        assert (await kernel.run_code("print(6 * 7)")).stdout == "42\n"
    assert [p.pid for p in zygote_processes()] == [zygote_pid]


async def test_forked_kernels_are_isolated_from_each_other(make_kernel) -> None:
    a = await make_kernel("persistent")
    planted = await a.run_code(
        f"""
import builtins, json, os, sys, types
secret = {SECRET!r}
builtins.planted = secret
json.planted = secret
os.environ['PLANTED'] = secret
sys.modules['planted'] = types.ModuleType('planted')
sys.path.append('/planted')
open('notes.txt', 'w').write(secret)
print(os.getuid())
"""
    )
    assert planted.error is None, planted.error
    b = await make_kernel("persistent")
    probe = f"""
import builtins, gc, json, os, sys
needles = ({"PLANTED-in-kernel-a"[::-1]!r}[::-1], {a.control.workdir[::-1]!r}[::-1])  # not in this code's own text
found = [
    hasattr(builtins, 'planted'), hasattr(json, 'planted'), 'PLANTED' in os.environ,
    'planted' in sys.modules, '/planted' in sys.path, os.path.exists('notes.txt'),
    'secret' in globals(),
]
gc.unfreeze()  # the zygote froze what it preloaded: look there too
raw = tuple(n.encode() for n in needles)
dicts = [o for o in gc.get_objects() if isinstance(o, dict)]
values = [v for d in dicts for v in list(d.values()) if isinstance(v, (str, bytes)) and v not in needles + raw]
hits = sum(1 for v in values if any(n in v for n in (needles if isinstance(v, str) else raw)))
print(found, hits, os.getuid(), os.getcwd() == os.environ['HOME'] == {b.control.workdir!r})
"""
    for semantics_b in (b, await make_kernel("stateless")):
        result = await semantics_b.run_code(probe)
        assert result.error is None, result.error
        found, hits, uid, home = re.fullmatch(r"(\[.*\]) (\d+) (\d+) (\w+)\n", result.stdout).groups()  # type: ignore[union-attr]
        assert found == str([False] * 7) and hits == "0"
        if probe_protection().uid_drop:
            assert int(uid) == semantics_b.control.uid and int(uid) != int(planted.stdout) == a.control.uid
        else:  # no uid drop without root: every kernel runs as the harness's user
            assert int(uid) == int(planted.stdout) == os.getuid() and semantics_b.control.uid is None
    if probe_protection().uid_drop:
        assert len({a.control.uid, b.control.uid}) == 2 and int(planted.stdout) == a.control.uid


def _rw_memory(pid: int) -> bytes:
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("rw"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except OSError:
                continue
    return b"".join(chunks)


async def test_zygote_memory_keeps_nothing_of_the_kernels_it_started(make_kernel, tmp_path) -> None:
    # What a new kernel inherits is the zygote's memory at the fork: it must hold
    # no trace of the kernels started before (their start-up message is wiped).
    if os.geteuid() != 0:
        pytest.skip("reading an undumpable process's memory (/proc/<pid>/mem) needs root")
    marker = "ZYGOTE-LEAK-CHECK-5c1e9b"
    workdir = tmp_path / marker
    workdir.mkdir()
    kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig(), workdir=str(workdir))
    try:
        await kernel.start()
        assert (await kernel.run_code("print('up')")).stdout == "up\n"
        assert REGISTRY.zygote.pid is not None
        memory = _rw_memory(REGISTRY.zygote.pid)
        assert len(memory) > 1_000_000
        assert marker.encode() not in memory and str(kernel.control.uid).encode() not in memory
    finally:
        await kernel.close()


async def test_killing_the_zygote_does_not_break_the_next_sample(make_kernel) -> None:
    a = await make_kernel("persistent")
    await a.run_code("x = 1")
    old_pid, starts = REGISTRY.zygote.pid, REGISTRY.zygote.starts
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    await async_wait_until(lambda: not psutil.pid_exists(a.control.pid) or psutil.Process(a.control.pid).status() == psutil.STATUS_ZOMBIE)
    # The next sample gets a kernel from a fresh zygote.
    b = await make_kernel("stateless")
    assert (await b.run_code("print('fresh')")).stdout == "fresh\n"
    assert REGISTRY.zygote.pid not in (None, old_pid) and REGISTRY.zygote.starts == starts + 1
    # A kernel that died with the old zygote reports the loss and carries on.
    result = await a.run_code("print('again')")
    assert result.kernel_restarted and result.stdout.endswith("again\n")
    assert (await a.run_code("x")).is_name_error


async def test_a_zygote_that_cannot_start_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit(3)\n")
    os.chmod(tmp_path, 0o755)
    REGISTRY.zygote.stop()
    monkeypatch.setattr(launcher, "KERNEL_SCRIPT", str(broken))
    kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig())
    started = time.monotonic()
    try:
        with pytest.raises(KernelError, match=r"zygote.*died"):
            await kernel.start()
    finally:
        await kernel.close()
        await REGISTRY.zygote.stop_and_wait()
    assert time.monotonic() - started < 10
    monkeypatch.undo()
    kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig())
    try:
        await kernel.start()
        assert (await kernel.run_code("print('recovered')")).stdout == "recovered\n"
    finally:
        await kernel.close()


async def test_kill_all_kernels_leaves_no_zygote_or_kernel(make_kernel) -> None:
    kernels = [await make_kernel(semantics) for semantics in ("persistent", "stateless", "persistent")]
    await kernels[0].run_code("y = 2")
    assert zygote_processes() and len(kernel_processes()) >= 6
    assert kill_all_kernels() == 3
    assert zygote_processes() == []
    await async_wait_until(lambda: kernel_processes() == [])
    assert kernel_processes() == []
    # and the runtime comes back on the next start
    again = await make_kernel("stateless")
    assert (await again.run_code("print(3)")).stdout == "3\n"


def _direct_launcher() -> KernelLauncher:
    """The benchmarks' baseline launcher (a fresh interpreter per kernel); the runtime ships none."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "direct_launch.py"
    spec = importlib.util.spec_from_file_location("direct_launch", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DirectLauncher()


async def test_zygote_and_direct_kernels_behave_the_same(make_kernel) -> None:
    probe = (
        "import sys, os\nprint(hash('abc'), sorted(os.environ), os.getcwd() == os.environ['HOME'], "
        "sys.flags.no_site, sorted(sys.modules))"
    )
    forked = await make_kernel("stateless")
    direct = Kernel(SEMANTICS["stateless"], RuntimeConfig(), launcher=_direct_launcher())
    try:
        await direct.start()
        assert direct.control.launched_by == "direct" and psutil.Process(direct.control.pid).ppid() == os.getpid()
        a, b = (await forked.run_code(probe)), (await direct.run_code(probe))
        assert a.error is None and a.stdout == b.stdout
        rand = "import random\nprint(random.getrandbits(64))"
        assert (await forked.run_code(rand)).stdout != (await (await make_kernel("stateless")).run_code(rand)).stdout
    finally:
        await direct.close()
    assert direct.control.pid is None


async def test_the_runtime_ships_one_launch_path() -> None:
    assert not hasattr(launcher, "launch_direct")
    kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig())
    try:
        assert kernel.control.launcher is launcher.ZYGOTE_LAUNCHER
    finally:
        await kernel.close()


async def test_a_second_event_loop_gets_its_kernels_from_the_zygote(make_kernel) -> None:
    """A start from another loop (thread) while the first has requests on the zygote: forked all the same."""
    first = await make_kernel("persistent")  # the zygote, started by this thread
    zygote = psutil.Process(REGISTRY.zygote.pid)
    other_started = threading.Event()
    outcome: list[object] = []

    async def other_loop() -> None:
        kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig())
        try:
            other_started.set()
            await kernel.start()
            outcome.append((await kernel.run_code("print('other')")).stdout)
        finally:
            await kernel.close()

    zygote.suspend()  # the other loop's request stays in flight
    thread = threading.Thread(target=lambda: asyncio.run(other_loop()))
    try:
        thread.start()
        await async_wait_until(lambda: REGISTRY.zygote.backlog() != (0, 0), timeout=30)
        assert REGISTRY.zygote.backlog() != (0, 0)
        here = Kernel(SEMANTICS["stateless"], RuntimeConfig())
        start = asyncio.create_task(here.start())
        await async_wait_until(lambda: sum(REGISTRY.zygote.backlog()) == 2 or start.done(), timeout=30)
        zygote.resume()
        await asyncio.wait_for(start, 60)
        try:
            assert here.control.launched_by == "zygote" and psutil.Process(here.control.pid).ppid() == REGISTRY.zygote.pid
            assert (await here.run_code("print('here')")).stdout == "here\n"
        finally:
            await here.close()
    finally:
        zygote.resume()
        await asyncio.to_thread(thread.join, 60)
    assert outcome == ["other\n"]
    assert (await first.run_code("print('first')")).stdout == "first\n"


async def test_a_start_handed_to_another_loop_and_cancelled_leaves_no_kernel(make_kernel) -> None:
    first = await make_kernel("persistent")
    zygote = psutil.Process(REGISTRY.zygote.pid)
    release = threading.Event()

    async def other_loop() -> None:
        kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig())
        try:
            await kernel.start()
            await asyncio.to_thread(release.wait, 60)  # keeps its kernel while the other loop gives up
        finally:
            await kernel.close()

    zygote.suspend()
    thread = threading.Thread(target=lambda: asyncio.run(other_loop()))
    try:
        thread.start()
        await async_wait_until(lambda: REGISTRY.zygote.backlog() != (0, 0), timeout=30)
        here = Kernel(SEMANTICS["persistent"], RuntimeConfig())
        start = asyncio.create_task(here.start())
        await async_wait_until(lambda: sum(REGISTRY.zygote.backlog()) == 2, timeout=30)
        assert sum(REGISTRY.zygote.backlog()) == 2  # handed to the loop that reads the zygote
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
        await here.close()
        zygote.resume()
        expected = {first.control.pid, *first.control.process_ids()}
        # the other loop's kernel starts; the one nobody wants any more is killed
        await async_wait_until(lambda: len({p.pid for p in kernel_processes()} - expected) == 2, timeout=30)
        await asyncio.sleep(0.5)
        assert len({p.pid for p in kernel_processes()} - expected) == 2  # the other loop's kernel + its step process
    finally:
        zygote.resume()
        release.set()
        await asyncio.to_thread(thread.join, 60)
    await async_wait_until(lambda: {p.pid for p in kernel_processes()} <= set(first.control.process_ids()), timeout=10)
    assert {p.pid for p in kernel_processes()} <= set(first.control.process_ids())


async def test_a_burst_of_starts_beyond_the_channel_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    # A window wider than the channel's buffer (some 60-100 requests): the
    # senders beyond it wait for the zygote to drain it; none of them fails.
    monkeypatch.setattr(REGISTRY.tunables, "launch_window", 1000)
    count = 200
    kernels = [Kernel(SEMANTICS["persistent"], RuntimeConfig()) for _ in range(count)]
    try:
        await asyncio.gather(*(k.start() for k in kernels))
        assert len({k.control.pid for k in kernels}) == count and {k.control.launched_by for k in kernels} == {"zygote"}
        results = await asyncio.gather(*(k.run_code(f"print({i})") for i, k in enumerate(kernels)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(count)]
    finally:
        await _close_all(kernels)
    assert await async_wait_until(lambda: kernel_processes() == []), kernel_processes()


async def _start_all(kernels: list[Kernel], order: list[int]) -> list[BaseException | None]:
    async def one(index: int, kernel: Kernel) -> None:
        await kernel.start()
        order.append(index)

    results = await asyncio.gather(*(one(i, k) for i, k in enumerate(kernels)), return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in results]


async def test_a_burst_queues_in_the_harness_and_is_served_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(REGISTRY.tunables, "launch_window", 4)
    count = 60
    kernels = [Kernel(SEMANTICS["stateless"], RuntimeConfig()) for _ in range(count)]
    launched: list[int] = []
    real_launch = REGISTRY.zygote.launch

    async def launch(start, control):  # the order in which the zygote answered
        result = await real_launch(start, control)
        launched.append(next(i for i, k in enumerate(kernels) if k.control.workdir == start["cwd"]))
        return result

    monkeypatch.setattr(REGISTRY.zygote, "launch", launch)
    backlog: list[tuple[int, int]] = []

    async def watch() -> None:
        while len(launched) < count:
            backlog.append(REGISTRY.zygote.backlog())
            await asyncio.sleep(0.001)

    try:
        watcher = asyncio.create_task(watch())
        errors = await _start_all(kernels, [])
        await watcher
        assert errors == [None] * count
        assert launched == list(range(count))  # first come, first served
        assert max(sent for _queued, sent in backlog) <= 4 and max(q for q, _s in backlog) > 0
        results = await asyncio.gather(*(k.run_code(f"print({i})") for i, k in enumerate(kernels)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(count)]
    finally:
        await _close_all(kernels)
    assert REGISTRY.zygote.backlog() == (0, 0)


async def test_restarting_the_zygote_under_load_loses_no_queued_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(REGISTRY.tunables, "launch_window", 4)
    count = 40
    REGISTRY.launch_stats.clear()
    kernels = [Kernel(SEMANTICS["persistent"], RuntimeConfig()) for _ in range(count)]
    seen: list[tuple[int, int]] = []

    async def kill_zygote_midway() -> None:
        while len(REGISTRY.launch_stats.launches) < 6:
            await asyncio.sleep(0)
        seen.append(REGISTRY.zygote.backlog())
        assert REGISTRY.zygote.pid is not None
        os.kill(REGISTRY.zygote.pid, signal.SIGKILL)

    starts = REGISTRY.zygote.starts
    try:
        killer = asyncio.create_task(kill_zygote_midway())
        errors = await _start_all(kernels, [])
        await killer
        assert seen[0][0] > 0  # requests were still queued when the zygote died
        assert errors == [None] * count and REGISTRY.zygote.starts >= starts + 1
        results = await asyncio.gather(*(k.run_code(f"x = {i}\nprint(x)") for i, k in enumerate(kernels)))
        assert [r.stdout.splitlines()[-1] for r in results] == [str(i) for i in range(count)]
        assert [r.error for r in results] == [None] * count
    finally:
        await _close_all(kernels)
    assert await async_wait_until(lambda: kernel_processes() == []), kernel_processes()


async def test_a_kernel_that_cannot_start_fails_alone(tmp_path) -> None:
    kernels = [Kernel(SEMANTICS["persistent"], RuntimeConfig()) for _ in range(12)]
    (tmp_path / "gone").mkdir()
    doomed = Kernel(SEMANTICS["persistent"], RuntimeConfig(), workdir=str(tmp_path / "gone"))
    shutil.rmtree(tmp_path / "gone")  # its working directory (and its container) vanished: it cannot start
    kernels.insert(5, doomed)
    try:
        errors = await _start_all(kernels, [])
        assert isinstance(errors[5], KernelError) and "did not start" in str(errors[5])
        assert errors[:5] + errors[6:] == [None] * 12
        results = await asyncio.gather(*(k.run_code("print('ok')") for k in kernels if k is not doomed))
        assert {r.stdout for r in results} == {"ok\n"}
    finally:
        await _close_all(kernels)
    assert await async_wait_until(lambda: kernel_processes() == []), kernel_processes()


async def test_a_fork_of_the_harness_leaves_the_parents_runtime_alone(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    zygote_pid = REGISTRY.zygote.pid
    pid = os.fork()
    if pid == 0:  # the child forgets the parent's zygote and kernels, even at exit
        code = 0 if REGISTRY.zygote.pid is None and kill_all_kernels(wait=0) == 0 else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert REGISTRY.zygote.pid == zygote_pid and psutil.pid_exists(zygote_pid)
    assert (await kernel.run_code("print('still here')")).stdout == "still here\n"


async def test_a_stuck_zygote_is_replaced_and_its_requests_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(REGISTRY.tunables, "zygote_stall_timeout", 1.0)
    first = Kernel(SEMANTICS["persistent"], RuntimeConfig())
    kernels = [Kernel(SEMANTICS["persistent"], RuntimeConfig()) for _ in range(5)]
    try:
        await first.start()
        stuck, starts = REGISTRY.zygote.pid, REGISTRY.zygote.starts
        assert stuck is not None
        os.kill(stuck, signal.SIGSTOP)  # alive, but answers nothing and uses no CPU
        errors = await asyncio.wait_for(_start_all(kernels, []), 60)
        assert errors == [None] * 5
        assert REGISTRY.zygote.starts == starts + 1 and REGISTRY.zygote.pid != stuck
        results = await asyncio.gather(*(k.run_code("print('served')") for k in kernels))
        assert {r.stdout for r in results} == {"served\n"}
    finally:
        for kernel in [first, *kernels]:
            await kernel.close()
    await async_wait_until(lambda: kernel_processes() == [])
    assert kernel_processes() == []
