"""What issue 18's protections cost a step, kept off the step's path.

- A persistent step process is stopped between steps (threads it left burn no
  CPU) within ``STOP_AFTER`` of its step's end, but its kernel process K is
  not woken by those stops, back-to-back steps send no signals at all, and
  what runs before the stop counts toward the next step.
- Every stateless step gets a directory nothing earlier touched, made ahead
  off the event loop; none is left behind.
- A step process gets its seccomp program ready-made from K, with its own pid.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from polling import async_wait_until

from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.sandboxes import Kernel, RuntimeConfig, _clock, _confine, _fs, probe_protection, step_channel
from opaque_knapsack.sandboxes._wire import RETIRED_PREFIX, WORKDIR_NAME


def _context_switches(pid: int) -> int:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


async def test_the_kernel_process_sleeps_through_its_step_processes_stops(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    assert (await kernel.run_code("x = 0")).error is None
    k_pid, child = kernel.control.pid, kernel.control.child
    assert k_pid is not None and child is not None
    before = _context_switches(k_pid)
    for i in range(30):
        result = await kernel.run_code(f"x += {i}")
        assert result.error is None, result
        await asyncio.sleep(0.01)  # more than STOP_AFTER: the step process is stopped
        assert child.stopped
        assert await async_wait_until(lambda: _state(child.pid) == "T", interval=0.001)  # once it gets a CPU
    assert (await kernel.run_code("print(x)")).stdout == f"{sum(range(30))}\n"
    # a wait on the children would wake K at each stop and each continue: 60 or more
    assert _context_switches(k_pid) - before < 10


async def test_back_to_back_steps_send_no_signals(make_kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = await make_kernel("persistent")
    sent: list[int] = []
    signal_ = step_channel.StepProcess._signal
    monkeypatch.setattr(step_channel.StepProcess, "_signal", lambda self, sig: sent.append(sig) or signal_(self, sig))
    for _ in range(20):
        assert (await kernel.run_code("1")).error is None
    assert sent == []
    await asyncio.sleep(0.01)
    assert len(sent) == 1 and kernel.control.child is not None and kernel.control.child.stopped
    assert (await kernel.run_code("print('again')")).stdout == "again\n"
    assert len(sent) == 2  # SIGSTOP, then SIGCONT for the step


def test_cpu_burnt_after_a_step_counts_toward_the_next() -> None:
    cpu = [1.0]
    clock = _clock.StepClock(lambda: cpu[0])
    clock.start(10.0)
    cpu[0] = 2.0
    clock.idle()  # the step ended at 2 CPU-seconds
    cpu[0] = 2.5  # threads it left ran for half a second before the stop
    clock.start(10.0)
    cpu[0] = 3.0
    assert clock.read(clock.started)[1] == pytest.approx(1.0)
    clock.start(10.0)  # no step ended in between: the count starts now
    assert clock.read(clock.started)[1] == pytest.approx(0.0)


@pytest.mark.skipif(not probe_protection().uid_drop, reason="directories are made ahead where the container is root's")
async def test_stateless_steps_get_directories_made_ahead_and_none_is_left(tmp_path: Path) -> None:
    container = tmp_path / "container"
    container.mkdir()
    kernel = Kernel(SEMANTICS["stateless"], RuntimeConfig(), workdir=str(container))
    await kernel.start()
    try:
        inodes = []
        for _ in range(3 * 16):  # several batches of directories made ahead
            result = await kernel.run_code("import os\nprint(os.stat('.').st_ino, os.listdir('.'))\nopen('note', 'w').close()")
            assert result.error is None, result
            inode, listed = result.stdout.split(" ", 1)
            assert listed == "[]\n"  # the last step's note is not there
            inodes.append(inode)
        # a directory nothing earlier touched, every step (a number is reused once its directory is deleted)
        assert all(a != b for a, b in zip(inodes, inodes[1:], strict=False))
        assert kernel.control.makes_ahead and kernel.control._fresh_dirs
    finally:
        await kernel.close()
    assert os.listdir(container) == []
    assert not [name for name in os.listdir(container) if name.startswith((RETIRED_PREFIX, WORKDIR_NAME))]


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "in-a").touch()
    (tmp_path / "b").mkdir()
    if not _fs.exchange(str(tmp_path / "a"), str(tmp_path / "b")):
        pytest.skip("this file system cannot swap paths")
    assert os.listdir(tmp_path / "b") == ["in-a"] and os.listdir(tmp_path / "a") == []
    with pytest.raises(FileNotFoundError):
        _fs.exchange(str(tmp_path / "a"), str(tmp_path / "missing"))


def test_a_prepared_filter_carries_the_pid_of_the_process_that_installs_it() -> None:
    prepared = _confine.PreparedFilter(strict=True)
    for pid in (1234, 98765):
        prepared.write_pid(pid)
        assert bytes(prepared.buf) == _confine._build_filter(True, pid)
    assert prepared.own and prepared.negated


async def test_a_persistent_step_process_stays_watched_from_step_to_step(make_kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """The channel is registered with the loop once, not added and removed at every wait."""
    kernel = await make_kernel("persistent")
    assert (await kernel.run_code("1")).error is None
    loop = asyncio.get_running_loop()
    added: list[int] = []
    add_reader = loop.add_reader
    monkeypatch.setattr(loop, "add_reader", lambda fd, *args: added.append(fd) or add_reader(fd, *args))
    for i in range(20):
        result = await kernel.run_code(f"print(inspect({i}))", {"inspect": lambda i: i * 2})
        assert result.stdout == f"{2 * i}\n", result
    assert len(added) <= 1


async def test_data_sent_between_steps_does_not_spin_the_loop(make_kernel) -> None:
    """Nobody waits on the channel between steps: a report of data there must not come back every turn."""
    kernel = await make_kernel("persistent")
    code = (
        "import gc, threading\n"
        "sock = next(o for o in gc.get_objects() if type(o).__name__ == 'Channel').sock\n"
        "threading.Thread(target=lambda: (__import__('time').sleep(0.05), sock.send(b'\\0' * 8))).start()\n"
    )
    assert (await kernel.run_code(code)).error is None
    await asyncio.sleep(0.02)
    child = kernel.control.child
    assert child is not None
    child.resume()  # let the thread send while no step runs
    await asyncio.sleep(0.1)
    started = time.process_time()
    await asyncio.sleep(0.5)
    assert time.process_time() - started < 0.1  # a spinning loop would burn the whole half second
    result = await kernel.run_code("print('next')")
    assert result.error is not None or result.stdout.endswith("next\n")


def test_each_kernel_adds_its_directories_to_a_ruleset_of_its_own(tmp_path: Path) -> None:
    """The zygote makes the read-only part of the next kernel's Landlock ruleset ahead; a kernel's
    own directories, added to it, must never reach the ruleset of a kernel forked after it."""
    if _confine.landlock_abi() <= 0:
        pytest.skip("no Landlock on this machine")
    import sys

    sys.path.insert(0, str(Path(_confine.__file__).parent))
    try:
        import _kernel  # the kernel script's own module, as the zygote runs it
    finally:
        sys.path.pop(0)
    readable, first, second = tmp_path / "ro", tmp_path / "first", tmp_path / "second"
    for path in (readable, first, second):
        path.mkdir()
        (path / "note").write_text(path.name)

    def kernel(own: Path, other: Path) -> int:
        """A forked kernel: its ruleset from the base, then what it can read."""
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _kernel._prepare_confinement({"landlock": True, "seccomp": False, "read_only_paths": [str(readable)],
                                              "read_write_paths": [str(own)]})
                assert _confine.restrict_self(_kernel._PREPARED["ruleset"])
                assert (own / "note").read_text() == own.name and (readable / "note").read_text() == "ro"
                try:
                    (other / "note").read_text()
                except PermissionError:
                    code = 0
            finally:
                os._exit(code)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    zygote = os.fork()
    if zygote == 0:
        code = 1
        try:
            _kernel._make_base_ruleset({"read_only_paths": [str(readable)]})
            first_result = kernel(first, second)
            _kernel._make_base_ruleset({"read_only_paths": [str(readable)]})  # as the zygote does after each fork
            code = 0 if first_result == 0 and kernel(second, first) == 0 else 2
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(zygote, 0)[1]) == 0
