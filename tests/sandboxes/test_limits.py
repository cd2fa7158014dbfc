"""Limits and faults: each ends as a clear error in the StepResult, the harness unharmed."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from polling import async_wait_until

from opaque_knapsack.sandboxes import Kernel, StepResult
from opaque_knapsack.sandboxes.control import KernelControl

from .conftest import kernel_processes


def restart_notices(result: StepResult) -> int:
    """How often a result tells of a restart, in everything the agent or the log gets to read."""
    text = result.stdout + (result.error.message + result.error.traceback if result.error else "")
    return text.lower().count("restart")


async def test_infinite_loop_times_out_and_state_survives_when_interruptible(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    await kernel.run_code("kept = 1")
    result = await kernel.run_code("while True:\n    pass", timeout=0.5)
    assert result.timed_out and result.error is not None and result.error.type == "StepTimeout"
    assert "0.5 s" in result.error.message
    assert not result.kernel_restarted
    assert (await kernel.run_code("print(kept)")).stdout == "1\n"


@pytest.mark.parametrize(
    "code",
    [
        "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except BaseException:\n        pass",
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass",
        "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\nwhile True: pass",
    ],
    ids=["catches-everything", "ignores-alarm", "blocks-alarm"],
)
async def test_stubborn_loop_is_killed(kernel: Kernel, code: str) -> None:
    await kernel.run_code("kept = 1")
    started = time.monotonic()
    result = await kernel.run_code(code, timeout=0.5)
    # Killed, never hung: on a quiet machine in about limit + grace (1.5 s) of the step's time;
    # the step clock credits waiting for a CPU, so a loaded machine stretches the wall time
    # (test_clock.py bounds the CPU; the absolute wall cap is at least 5 minutes).
    assert time.monotonic() - started < 30
    assert result.timed_out and result.error is not None and result.error.type == "StepTimeout"
    assert "killed" in result.error.message
    after = await kernel.run_code("print('alive')")
    assert after.stdout.endswith("alive\n")
    if kernel.semantics.persists_state:
        assert result.kernel_restarted and restart_notices(result) == 1
        again = await kernel.run_code("kept")
        assert again.is_name_error and not again.kernel_restarted
    else:
        assert not result.kernel_restarted


async def test_memory_limit(make_kernel) -> None:
    kernel = await make_kernel("persistent", memory_mb=256)
    result = await kernel.run_code("x = bytearray(1024 * 1024 * 1024)")
    assert result.error is not None and result.error.type == "MemoryError"
    assert (await kernel.run_code("print('ok')")).stdout == "ok\n"


async def test_output_is_capped_with_a_marker(kernel: Kernel) -> None:
    kernel.control.config = kernel.control.config.model_copy(update={"max_output_chars": 1000})
    result = await kernel.run_code("print('a' * 50_000)\nprint('the end')")
    assert result.output_truncated
    assert len(result.stdout) < 1200
    assert result.stdout.startswith("a" * 100)
    assert result.stdout.endswith("the end\n")
    assert "characters cut" in result.stdout
    cut = int(result.stdout.split("output truncated: ")[1].split(" ")[0])
    assert cut == 50_001 + 8 - 1000


async def test_tool_call_limit_is_enforced_by_the_harness(kernel: Kernel) -> None:
    calls: list[str] = []
    result = await kernel.run_code(
        "for i in range(5):\n    try:\n        inspect(str(i))\n    except ToolCallLimitError as e:\n        print('limit', i, isinstance(e, ToolError))",
        {"inspect": lambda i: calls.append(i) or "ok"},
        max_tool_calls=3,
    )
    assert calls == ["0", "1", "2"]
    assert result.stdout == "limit 3 True\nlimit 4 True\n"
    assert [c.error is None for c in result.tool_calls] == [True, True, True, False, False]


async def test_refused_calls_carry_the_limit_flag_not_a_wording(kernel: Kernel) -> None:
    """A host function failing with the refusal's own words is a failure, not a refusal."""

    def inspect(i: str) -> str:
        if i == "0":
            raise ValueError("tool call limit reached: the host says so")
        return "ok"

    code = "for i in range(3):\n    try:\n        inspect(str(i))\n    except ToolError as e:\n        print(type(e).__name__)"
    result = await kernel.run_code(code, {"inspect": inspect}, max_tool_calls=2)
    assert result.stdout == "ToolError\nToolCallLimitError\n"
    assert [c.limit for c in result.tool_calls] == [False, False, True]
    assert result.tool_calls[0].error == "tool call limit reached: the host says so"


async def test_tool_call_limit_holds_against_raw_channel_writes(kernel: Kernel) -> None:
    """The agent's code speaks the protocol itself, bypassing the stub's bookkeeping."""
    calls: list[str] = []
    code = """
import gc, json, struct
chan = next(o for o in gc.get_objects() if type(o).__name__ == 'Channel')
answers = []
for i in range(6):
    msg = json.dumps({'type': 'tool_call', 'id': 1000 + i, 'name': 'inspect', 'args': [str(i)], 'kwargs': {}}).encode()
    chan.sock.sendall(struct.pack('>I', len(msg)) + msg)
    answers.append(chan.recv())
print([a['ok'] for a in answers])
"""
    result = await kernel.run_code(code, {"inspect": lambda i: calls.append(i) or "ok"}, max_tool_calls=2)
    assert result.error is None, result.error
    assert calls == ["0", "1"]
    assert result.stdout == "[True, True, False, False, False, False]\n"


@pytest.mark.parametrize(
    "code",
    ["import os\nos._exit(3)", "import ctypes\nctypes.string_at(0)", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"],
    ids=["os-exit", "segfault", "self-kill"],
)
async def test_kernel_crash_is_reported_and_persistent_restarts(kernel: Kernel, code: str) -> None:
    await kernel.run_code("kept = 1")
    result = await kernel.run_code(code)
    assert result.error is not None and result.error.type == "KernelCrash"
    assert "died" in result.error.message
    if kernel.semantics.persists_state:
        assert result.kernel_restarted and restart_notices(result) == 1  # announced once
        assert result.stdout.startswith("[kernel restarted") and "restart" not in result.error.message
        again = await kernel.run_code("kept")
        assert again.is_name_error and not again.kernel_restarted and restart_notices(again) == 0
    assert (await kernel.run_code("print(2)")).stdout.endswith("2\n")


async def test_state_loss_between_steps_is_reported(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    await kernel.run_code("kept = 1")
    dying = kernel.control.process_ids()[-1]
    # Between steps the step process is stopped, so nothing of its own can end it: a
    # kill from outside (the OOM killer, an operator) does.
    os.kill(dying, signal.SIGKILL)
    assert await async_wait_until(lambda: dying not in [p.pid for p in kernel_processes()]), "the kernel never exited"
    result = await kernel.run_code("print('next')")
    assert result.kernel_restarted and restart_notices(result) == 1
    assert result.stdout.startswith("[kernel restarted")
    assert result.stdout.endswith("next\n")
    assert not (await kernel.run_code("print('then')")).kernel_restarted


async def test_a_step_process_gone_between_steps_is_replaced_before_its_kernel_says_so(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    await kernel.run_code("kept = 1")
    k_pid, child = kernel.control.pid, kernel.control.child
    assert k_pid is not None and child is not None
    os.kill(k_pid, signal.SIGSTOP)  # the kernel process can report nothing until it runs again
    try:
        os.kill(child.pid, signal.SIGKILL)
        assert await async_wait_until(child.ended)
        asyncio.get_running_loop().call_later(0.3, os.kill, k_pid, signal.SIGCONT)
        result = await kernel.run_code("print('next')")
    finally:
        os.kill(k_pid, signal.SIGCONT)
    assert result.kernel_restarted and result.error is None, result
    assert result.stdout.startswith("[kernel restarted") and result.stdout.endswith("next\n")


@pytest.mark.parametrize(
    "payload",
    [
        "sock.sendall(b'\\xff' * 64)",
        "sock.sendall(struct.pack('>I', 2**31) + b'x' * 100)",
        "sock.sendall(struct.pack('>I', 5) + b'{nope')",
        "m = json.dumps({'type': 'result', 'bogus': 1}).encode(); sock.sendall(struct.pack('>I', len(m)) + m)",
        "sock.sendall(b'x' * (4 << 20))",
    ],
    ids=["garbage", "huge-length", "bad-json", "bad-schema", "flood"],
)
async def test_channel_garbage_is_an_error_not_a_crash(kernel: Kernel, payload: str) -> None:
    code = (
        "import gc, json, struct\n"
        "sock = next(o for o in gc.get_objects() if type(o).__name__ == 'Channel').sock\n"
        + payload
        + "\nimport time; time.sleep(5)"
    )
    started = time.monotonic()
    result = await kernel.run_code(code, timeout=3)
    assert time.monotonic() - started < 2.5
    assert result.error is not None and result.error.type == "KernelProtocolError"
    assert (await kernel.run_code("print('fine')")).stdout.endswith("fine\n")


async def test_cancelled_step_leaves_a_working_kernel_and_no_stray_process(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    step = asyncio.create_task(kernel.run_code("import time\nopen('started', 'w').close()\ntime.sleep(20)"))
    started = os.path.join(kernel.control.workdir, "started")
    assert await async_wait_until(lambda: os.path.exists(started)), "the step never started"
    old_child = kernel.control.process_ids()[-1]  # the step process it runs
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    result = await kernel.run_code("print('after')")
    assert result.kernel_restarted and result.stdout.endswith("after\n")
    assert old_child not in [p.pid for p in kernel_processes()]
    await kernel.close()
    assert kernel_processes() == []


async def test_a_restart_already_announced_is_not_announced_again(make_kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a crash (announced), a kernel slow to give the next step process is replaced without a second notice."""
    kernel = await make_kernel("persistent")
    await kernel.run_code("kept = 1")
    crashed = await kernel.run_code("import os\nos._exit(3)")
    assert crashed.kernel_restarted and restart_notices(crashed) == 1
    original = KernelControl._await_ready
    stalls = [True]

    async def stalled_once(self: KernelControl) -> bool:
        if stalls:
            stalls.pop()
            return False  # no step process in time: the kernel is replaced
        return await original(self)

    monkeypatch.setattr(KernelControl, "_await_ready", stalled_once)
    after = await kernel.run_code("print('fresh')")
    assert not stalls  # the replacement happened
    assert after.stdout == "fresh\n" and not after.kernel_restarted and restart_notices(after) == 0
    # state built since then is announced, once, when it is lost
    await kernel.run_code("kept = 2")
    lost = await kernel.run_code("import os\nos._exit(3)")
    assert lost.kernel_restarted and restart_notices(lost) == 1
