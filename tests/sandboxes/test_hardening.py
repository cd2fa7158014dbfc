"""Issue 10's attacks, each reproduced and shown contained (and issue 11's step clock).

Every test drives real kernels: the attack code runs through ``run_code`` the way
an agent's block would. Where a layer needs root or seccomp, the test asserts
against what ``probe_protection()`` reports and checks that the other layers
still contain the attack.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import subprocess
import sys
import time

import psutil
import pytest
from polling import async_wait_until

from opaque_knapsack.knapsack.family import KNAPSACK
from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.sandboxes import (
    PersistentPythonSandbox,
    StatelessPythonSandbox,
    _fs,
    probe_protection,
    step_channel,
)
from opaque_knapsack.sandboxes import kernel as kernel_module
from opaque_knapsack.sandboxes.control import KernelControl
from opaque_knapsack.sandboxes.registry import REGISTRY
from opaque_knapsack.sandboxes.runtime import PythonRuntime
from opaque_knapsack.solvers import prompts

from .conftest import kernel_processes

RUNTIME_NAMES = ["persistent", "stateless"]


class LoopWatch:
    """Measures the longest time the event loop went without running this ticker.

    ``worst`` is in CPU time of the loop's thread: how long the loop was held
    busy by one stretch of work. Wall time would also count the time the
    process waited for a CPU, which a loaded machine (CI, or other jobs) adds
    and no code of ours can prevent; ``worst_wall`` keeps it for messages.
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_wall = 0.0
        self._task: asyncio.Task[None] | None = None
        self._done = False

    async def _tick(self) -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not self._done:
            await asyncio.sleep(0.005)
            now, now_cpu = time.perf_counter(), time.thread_time()
            self.worst = max(self.worst, now_cpu - last_cpu)
            self.worst_wall = max(self.worst_wall, now - last)
            last, last_cpu = now, now_cpu

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._done = True
        assert self._task is not None
        await self._task


async def _gone(pid: int) -> bool:
    return await async_wait_until(lambda: pid not in [p.pid for p in kernel_processes()])


# ---- 1. the event loop --------------------------------------------------------------

_FLOOD = """
import gc, json, struct, threading, time
chan = next(o for o in gc.get_objects() if type(o).__name__ == 'Channel')
msg = json.dumps({{'type': 'tool_call', 'id': 7, 'name': 'nope', 'args': {args}, 'kwargs': {{}}}}).encode()
frame = (struct.pack('>I', len(msg)) + msg) * {copies}
def drain():
    while True:
        chan.sock.recv(1 << 20)
threading.Thread(target=drain, daemon=True).start()
while True:
    chan.sock.sendall(frame)
"""
# many small frames a write, or one frame of deeply nested arguments
_FLOOD_SMALL = _FLOOD.format(args="[]", copies=64)
_FLOOD_BIG = _FLOOD.format(args="[[[{}]] * 40000]", copies=1)


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
@pytest.mark.parametrize("flood", [_FLOOD_SMALL, _FLOOD_BIG], ids=["small-frames", "big-frames"])
async def test_frame_flood_neither_stalls_the_loop_nor_times_out_another_sample(make_kernel, semantics: str, flood: str) -> None:
    attacker = await make_kernel(semantics)
    victim = await make_kernel("persistent")
    await victim.run_code("kept = 41")
    async with LoopWatch() as watch:
        started = time.monotonic()
        attack, honest = await asyncio.gather(
            attacker.run_code(flood, timeout=6),
            victim.run_code("import time\ntime.sleep(1.5)\nprint(kept + 1)", timeout=10),
        )
        elapsed = time.monotonic() - started
    # The attack ends as a fault of its own step, within its deadline (+ grace).
    assert attack.error is not None and attack.error.type in ("StepTimeout", "KernelProtocolError", "KernelCrash"), attack.error
    assert elapsed < 35  # at most the hard ceiling: 4 x (6 s + 1 s grace), CPU waits credited below it
    # Before the fix the loop was held for the whole flood (6-32 s with a 3 s timeout; here 6 s).
    assert watch.worst < 1.0, f"event loop held {watch.worst:.2f} s of CPU ({watch.worst_wall:.2f} s wall)"
    assert honest.error is None and honest.stdout == "42\n", honest
    # Bounded records (item 2): refused calls beyond a sample are counted, not kept.
    assert len(attack.tool_calls) <= step_channel._REFUSED_SAMPLE
    assert attack.tool_calls_omitted > 0
    after = await attacker.run_code("print('after')", timeout=5)
    if not after.stdout.endswith("after\n"):
        # Persistent: if the step ended on its own StepTimeout, the flood's threads live on
        # with the state and break that runtime's channel; it faults and restarts, never hangs.
        assert semantics == "persistent" and after.error is not None and after.kernel_restarted, after
        assert (await attacker.run_code("print('after')", timeout=5)).stdout.endswith("after\n")


# ---- 2. memory for call records ------------------------------------------------------------

_BIG_REFUSED = """
import gc, json, struct
chan = next(o for o in gc.get_objects() if type(o).__name__ == 'Channel')
for i in range(60):
    msg = json.dumps({'type': 'tool_call', 'id': i, 'name': 'inspect', 'args': ['x' * 200_000], 'kwargs': {}}).encode()
    chan.sock.sendall(struct.pack('>I', len(msg)) + msg)
    chan.recv()
print('sent')
"""


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_refused_calls_keep_a_bounded_sample_and_a_count(make_kernel, semantics: str, caplog: pytest.LogCaptureFixture) -> None:
    kernel = await make_kernel(semantics)
    calls: list[str] = []
    with caplog.at_level(logging.WARNING, logger=kernel_module.logger.name):
        result = await kernel.run_code(_BIG_REFUSED, {"inspect": lambda i: calls.append(i) or "ok"}, max_tool_calls=0)
    assert result.error is None, result.error
    assert calls == []
    assert len(result.tool_calls) == step_channel._REFUSED_SAMPLE
    assert result.tool_calls_omitted == 60 - step_channel._REFUSED_SAMPLE
    for record in result.tool_calls:  # 200 kB of arguments each: only the head of their JSON text is kept
        assert record.args_truncated and record.kwargs == {}
        assert len(record.args[0]) <= step_channel._ARGS_SAMPLE_CHARS
    assert len(json.dumps([r.model_dump() for r in result.tool_calls])) < 64 * 1024
    assert "left out" in caplog.text and "truncated" in caplog.text


async def test_episode_bound_on_record_bytes(make_kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(REGISTRY.tunables, "episode_record_bytes", 60_000)
    kernel = await make_kernel("persistent")
    code = "for i in range(3):\n    inspect('y' * 10_000)"
    first = await kernel.run_code(code, {"inspect": lambda i: "ok"})
    assert [r.args_truncated for r in first.tool_calls] == [False, False, False]
    later = [await kernel.run_code(code, {"inspect": lambda i: "ok"}) for _ in range(2)]
    flags = [r.args_truncated for result in later for r in result.tool_calls]
    assert len(flags) == 6 and flags[-1] and flags.count(True) >= 3  # executed calls are all recorded
    assert all(r.result == "ok" for result in later for r in result.tool_calls)


# ---- 3. step processes end with their step ------------------------------------------------

_PATCH_EXIT = """
import os, sys, threading, time
kernel_globals = sys._getframe(0).f_back.f_globals
assert 'Channel' in kernel_globals
kernel_globals['_exit'] = lambda code: time.sleep(1000)
stash = 'stash from step'
threading.Thread(target=lambda: [time.sleep(0.05) for _ in iter(int, 1)], daemon=True).start()
print(os.getpid())
"""

_FORGE_RESULT = """
import gc, json, os, struct, time
chan = next(o for o in gc.get_objects() if type(o).__name__ == 'Channel')
chan.send({'type': 'result', 'stdout': f'forged {os.getpid()}\\n', 'error': None, 'is_name_error': False,
           'globals': None, 'timed_out': False, 'truncated_chars': 0})
while True:
    time.sleep(0.05)
"""


async def test_a_patched_kernel_does_not_outlive_its_stateless_step(make_kernel) -> None:
    kernel = await make_kernel("stateless")
    for _ in range(3):  # three in a row: spares are never used up, every call returns a result
        result = await kernel.run_code(_PATCH_EXIT, timeout=5)
        assert result.error is None, result.error
        pid = int(result.stdout.strip())
        assert await _gone(pid), "the step process outlived its step"
        fresh = await kernel.run_code("print(stash)")
        assert fresh.is_name_error
    forged = await kernel.run_code(_FORGE_RESULT, timeout=5)
    assert forged.error is None and forged.stdout.startswith("forged ")
    assert await _gone(int(forged.stdout.split()[1]))
    assert (await kernel.run_code("print('fine')")).stdout == "fine\n"


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_user_main_is_the_users_namespace(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    result = await kernel.run_code("import __main__\nx = 5\nprint(__main__.x, hasattr(__main__, 'Channel'), __name__)")
    assert result.stdout == "5 False __main__\n"


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_parent_death_signal_cannot_be_cleared(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    result = await kernel.run_code(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.prctl(1, 0, 0, 0, 0), ctypes.get_errno())\n"
        "sig = ctypes.c_int(-1)\nlibc.prctl(2, ctypes.byref(sig), 0, 0, 0)\nprint(sig.value)"
    )
    rc, err = (int(x) for x in result.stdout.splitlines()[0].split())
    if probe_protection().seccomp:
        assert (rc, err) == (-1, errno.EPERM)
        assert result.stdout.splitlines()[1] == "9"  # still SIGKILL
    await kernel.close()
    assert kernel_processes() == []  # whatever the prctl did, nothing of the kernel is left


async def test_run_code_returns_a_result_when_no_kernel_can_start(make_kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = await make_kernel("persistent")
    await kernel.run_code("kept = 1")
    kernel.kill()  # the kernel is gone, and no new one can start

    async def refuse(self: KernelControl) -> None:
        raise kernel_module.KernelError("no kernel for you")

    monkeypatch.setattr(KernelControl, "spawn", refuse)
    result = await kernel.run_code("print(1)")
    assert result.error is not None and result.error.type == "KernelError"
    assert "no kernel for you" in result.error.message and result.kernel_restarted
    monkeypatch.undo()
    after = await kernel.run_code("print(2)")
    assert after.stdout.endswith("2\n")


# ---- 4. files do not carry state across stateless steps ---------------------------------


async def test_stateless_steps_get_an_empty_working_directory(make_kernel) -> None:
    kernel = await make_kernel("stateless")
    wrote = await kernel.run_code(
        "import os\nopen('memory.txt', 'w').write('x = 42')\nos.makedirs('a/b/c')\nos.symlink('/etc', 'link')\nprint(sorted(os.listdir('.')))"
    )
    assert wrote.stdout == "['a', 'link', 'memory.txt']\n"
    result = await kernel.run_code("import os\nprint(os.listdir('.'), os.getcwd() == os.environ['HOME'])")
    assert result.stdout == "[] True\n"
    assert os.path.isdir(kernel.control.workdir)


async def test_stateless_keep_files_keeps_them_and_the_prompt_says_so(make_kernel) -> None:
    kernel = await make_kernel("stateless", stateless_keep_files=True)
    await kernel.run_code("open('memory.txt', 'w').write('x = 42')")
    assert (await kernel.run_code("print(open('memory.txt').read())")).stdout == "x = 42\n"
    assert (await kernel.run_code("print(x)")).is_name_error  # the interpreter is still fresh
    assert kernel.semantics == SEMANTICS["stateless"].keeping_files()
    keep = prompts.codeact_system_prompt(kernel.semantics, family=KNAPSACK, max_tool_calls=25, max_turns=40)
    default = prompts.codeact_system_prompt(SEMANTICS["stateless"], family=KNAPSACK, max_tool_calls=25, max_turns=40)
    assert "files your code writes in the working directory are kept" in keep
    assert "kept" not in prompts.runtime_note(SEMANTICS["stateless"]) and prompts.RUNTIME_NOTES["stateless"] in default


async def test_provider_reports_whether_files_are_kept() -> None:
    for config, expected in ((None, False), ({"stateless_keep_files": True}, True)):
        spec_config = None if config is None else kernel_module.RuntimeConfig(**config)
        envs = await StatelessPythonSandbox.sample_init("t", spec_config, {})
        try:
            runtime = envs["default"]
            assert isinstance(runtime, PythonRuntime)  # what the agents use of it
            assert runtime.semantics.keeps_files is expected and not runtime.semantics.persists_state
        finally:
            await StatelessPythonSandbox.sample_cleanup("t", spec_config, envs, False)


# ---- 5. cleanup of hostile working directories -------------------------------------------

_DEEP_TREE = """
import os
for i in range(40):
    open(f'f{i}', 'w').close()
os.mkdir('locked')
os.chmod('locked', 0)
for level in range(3000):
    os.mkdir('d')
    os.chdir('d')
open('bottom', 'w').write('deep')
for i in range(5000):
    open(f'g{i}', 'w').close()
print('built')
"""


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_deep_and_wide_workdir_is_removed_off_the_loop(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics, step_timeout=60, stateless_keep_files=True)
    result = await kernel.run_code(_DEEP_TREE, timeout=60)
    assert result.stdout == "built\n", result
    workdir = kernel.control.workdir
    async with LoopWatch() as watch:
        await kernel.close()
    assert not os.path.exists(workdir)
    assert watch.worst < 1.0, f"event loop held {watch.worst:.2f} s of CPU ({watch.worst_wall:.2f} s wall)"


async def test_deep_tree_is_cleared_between_stateless_steps(make_kernel) -> None:
    kernel = await make_kernel("stateless", step_timeout=60)
    assert (await kernel.run_code(_DEEP_TREE, timeout=60)).stdout == "built\n"
    assert (await kernel.run_code("import os\nprint(os.listdir('.'))")).stdout == "[]\n"


async def test_a_removal_error_is_logged_not_raised(make_kernel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    kernel = await make_kernel("persistent")

    def broken(path: str) -> None:
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(_fs, "remove_tree", broken)
    with caplog.at_level(logging.WARNING, logger=kernel_module.logger.name):
        await kernel.close()
    assert "disk on fire" in caplog.text
    monkeypatch.undo()
    _fs.remove_tree(kernel.control.workdir)


def test_remove_tree_handles_depth_beyond_open_file_limits(tmp_path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:  # 5000 levels, deeper than PATH_MAX allows by name
        for _ in range(5000):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.symlink("/etc/passwd", "link", dir_fd=fd)
    finally:
        os.close(fd)
    try:
        _fs.remove_tree(str(root))
        assert not root.exists() and os.path.exists("/etc/passwd")
    finally:
        # Whatever remains goes with rm, never with pytest's own cleanup: its recursive
        # rmtree would hit a RecursionError in this process (see _DEEP_TREE_EVAL).
        subprocess.run(["rm", "-rf", "--", str(root)], check=False)


# The eval runs in a process of its own. Deep trees are what kernels build, and anything in
# the harness that recursed into one would raise RecursionError; after one, CPython 3.11's
# compile() can fail in the same process ("AST constructor recursion depth mismatch"), and
# pytest, which compiles while it formats a failure, would crash with an INTERNALERROR that
# hides the failure and the summary.
_DEEP_TREE_EVAL = """
import json, sys
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.solver import Generate, Solver, TaskState, solver
from opaque_knapsack.sandboxes import runtime_sandbox

@solver
def build() -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        result = await runtime_sandbox().run_code(sys.argv[2], timeout=60)
        state.metadata["stdout"] = result.stdout
        return state

    return solve

task = Task(dataset=[Sample(input="go"), Sample(input="go")], solver=build(), sandbox="persistent_python")
[log] = eval(task, model="mockllm/model", log_dir=sys.argv[1], display="none")
print(json.dumps({"status": log.status, "error": log.error and log.error.message,
                  "stdout": [s.metadata.get("stdout") for s in log.samples or []]}))
"""


def _kernels_of(harness_pid: int) -> list[int]:
    """Live kernel processes (zygote included) that the harness ``harness_pid`` started."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if kernel_module.KERNEL_SCRIPT in cmdline and proc.info.get("status") != psutil.STATUS_ZOMBIE:
            try:
                if json.loads(cmdline[cmdline.index(kernel_module.KERNEL_SCRIPT) + 2]).get("harness_pid") == harness_pid:
                    found.append(proc.pid)
            except (ValueError, IndexError, AttributeError):
                continue
    return found


@pytest.mark.slow
async def test_eval_ends_normally_after_a_deep_tree(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    harness = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _DEEP_TREE_EVAL, str(tmp_path), _DEEP_TREE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(harness.communicate(), timeout=300)
    assert harness.returncode == 0, err.decode(errors="replace")[-3000:]
    outcome = json.loads(out.decode().splitlines()[-1])
    assert outcome == {"status": "success", "error": None, "stdout": ["built\n", "built\n"]}, outcome
    assert await async_wait_until(lambda: _kernels_of(harness.pid) == []), _kernels_of(harness.pid)


# ---- 6. sockets ---------------------------------------------------------------------------------

_SOCKETS = """
import errno, socket
out = []
for kind in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC):
    try:
        socket.socketpair(socket.AF_UNIX, kind)
        out.append('PAIR')
    except OSError as e:
        out.append(e.errno)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
a.send(b'x')
out.append(b.recv(1).decode())
for send in (lambda: a.sendto(b'x', '/dev/log'), lambda: a.sendmsg([b'x']), lambda: a.sendmsg([b'x'], [], 0, '/dev/log')):
    try:
        send()
        out.append('SENT')
    except OSError as e:
        out.append(e.errno)
print(out)
"""


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_only_stream_socketpairs_and_no_addressed_sends(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    result = await kernel.run_code(_SOCKETS)
    assert result.error is None, result.error
    out = eval(result.stdout)
    assert "PAIR" not in out[:3] or not probe_protection().seccomp
    assert out[3] == "x"  # the channel's kind of socket still works
    assert out[4] != "SENT"  # a connected stream socket takes no address anyway
    if probe_protection().seccomp:
        assert out[:3] == [errno.EPERM] * 3
        assert out[4:] == [errno.EPERM] * 3
    assert (await kernel.run_code("print('ok')")).stdout == "ok\n"


# ---- 7. read_file / write_file against a symlink race ---------------------------------------

_SWAPPER = """
import os, time
outside = {outside!r}
os.makedirs('d', exist_ok=True)
end = time.monotonic() + {seconds}
swaps = 0
while time.monotonic() < end:
    try:
        os.rename('d', 'd_real')
        os.symlink(outside, 'd')
        os.unlink('d')
        os.rename('d_real', 'd')
        swaps += 1
    except OSError:
        pass
print(swaps)
"""


@pytest.mark.parametrize("cls", [PersistentPythonSandbox, StatelessPythonSandbox], ids=RUNTIME_NAMES)
async def test_file_io_cannot_be_raced_outside_the_workdir(cls, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("ROOT-ONLY-SECRET")
    os.chmod(secret, 0o600)
    os.chmod(tmp_path, 0o755)
    os.chmod(outside, 0o755)
    envs = await cls.sample_init("t", kernel_module.RuntimeConfig(stateless_keep_files=True), {})
    env = envs["default"]
    leaks: list[str] = []
    try:
        step = asyncio.create_task(env.run_code(_SWAPPER.format(outside=str(outside), seconds=4), timeout=20))
        swapping = os.path.join(env.workdir, "d")
        assert await async_wait_until(lambda: os.path.lexists(swapping)), "the swapper never started"
        for i in range(300):
            try:
                await env.write_file(f"d/planted{i}.txt", "x")
            except OSError:
                pass
            try:
                leaks.append(await env.read_file("d/secret.txt"))
            except OSError:
                pass
        result = await step
        assert result.error is None and int(result.stdout) > 10, result  # the race really ran
    finally:
        await cls.sample_cleanup("t", None, envs, False)
    assert "ROOT-ONLY-SECRET" not in leaks
    assert sorted(os.listdir(outside)) == ["secret.txt"]


async def test_file_io_refuses_symlinks_and_escapes() -> None:
    envs = await PersistentPythonSandbox.sample_init("t", None, {})
    env = envs["default"]
    try:
        await env.write_file("sub/dir/file.txt", "hello")
        assert await env.read_file("sub/dir/file.txt") == "hello"
        assert await env.read_file(os.path.join(env.workdir, "sub/dir/file.txt")) == "hello"  # type: ignore[attr-defined]
        await env.run_code("import os\nos.symlink('/etc', 'etc')\nos.symlink('sub', 'alias')")  # type: ignore[attr-defined]
        for path in ("etc/passwd", "alias/dir/file.txt", "../x", "/etc/passwd"):
            with pytest.raises(PermissionError):
                await env.read_file(path)
        with pytest.raises(PermissionError):
            await env.write_file("etc/planted", "x")
        with pytest.raises(FileNotFoundError):
            await env.read_file("missing.txt")
        if probe_protection().uid_drop:  # created through descriptors, owned by the kernel's uid
            assert os.stat(os.path.join(env.workdir, "sub/dir")).st_uid == env.kernel.control.uid  # type: ignore[attr-defined]
            assert os.stat(os.path.join(env.workdir, "sub/dir/file.txt")).st_uid == env.kernel.control.uid  # type: ignore[attr-defined]
    finally:
        await PersistentPythonSandbox.sample_cleanup("t", None, envs, False)


# ---- 8. lower severity -----------------------------------------------------------------------


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_inotify_is_denied_and_stat_shows_metadata_only(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    parent = os.path.dirname(kernel.control.container)  # where other samples' working directories are
    result = await kernel.run_code(
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"print(libc.inotify_init1(0), ctypes.get_errno())\n"
        f"print(os.path.exists('/etc/passwd'))\n"
        f"try:\n    os.listdir({parent!r}); print('LISTED')\nexcept OSError as e: print('denied')\n"
        "try:\n    open('/etc/passwd').read(); print('READ')\nexcept OSError as e: print('denied')\n"
        "try:\n    os.listdir('/proc'); print('LISTED')\nexcept OSError as e: print('denied')\n"
    )
    lines = result.stdout.splitlines()
    if probe_protection().seccomp:
        assert lines[0] == f"-1 {errno.EPERM}"
    # stat() outside the working directory: closed by the private root, else documented (metadata only)
    assert lines[1] == str(not probe_protection().namespaces)
    if probe_protection().landlock_abi:
        assert lines[2:] == ["denied", "denied", "denied"]


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_error_text_and_globals_are_bounded(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics, max_output_chars=1000)
    result = await kernel.run_code("raise ValueError('x' * 3_000_000)")
    assert result.error is not None and result.error.type == "ValueError"
    assert len(result.error.message) < 1300 and len(result.error.traceback) < 1300
    assert "characters cut" in result.error.message
    if semantics == "persistent":
        listing = await kernel.run_code("for i in range(100_000):\n    globals()[f'v{i}'] = i\nglobals()['n' * 1_000_000] = 1")
        assert listing.globals is not None and sum(len(n) + 2 for n in listing.globals) <= 1000
        assert listing.globals_omitted > 0
        assert (await kernel.run_code("print(v99999)")).stdout == "99999\n"


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_lone_surrogates_are_escaped_not_fatal(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    await kernel.run_code("kept = 1")
    seen: list[str] = []
    result = await kernel.run_code(
        "print('a\\udc80b')\ninspect('id\\ud800')\nraise ValueError('bad \\udfff')", {"inspect": lambda i: seen.append(i) or "ok"}
    )
    assert result.stdout == "a\\udc80b\n"
    assert result.error is not None and result.error.type == "ValueError" and "\\udfff" in result.error.message
    assert not result.kernel_restarted
    json.dumps(result.model_dump()).encode("utf-8")  # writable to a log
    assert len(seen) == 1
    # Code with a lone surrogate (from the model) cannot be compiled, as in Python; it is an error, not a crash.
    from_model = await kernel.run_code("s = '\udc80'\nprint(len(s))")
    assert from_model.error is not None and from_model.error.type == "UnicodeEncodeError"
    assert not from_model.kernel_restarted
    if semantics == "persistent":
        assert (await kernel.run_code("print(kept)")).stdout == "1\n"


# ---- issue 11 item 5: the deadline measures the step's own work ------------------------------


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_tool_round_trips_do_not_count_against_the_deadline(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)

    async def slow_inspect(item: str) -> str:
        await asyncio.sleep(0.6)
        return item

    result = await kernel.run_code("for i in range(4):\n    inspect(str(i))\nprint('done')", {"inspect": slow_inspect}, timeout=1)
    assert result.error is None, result.error
    assert result.stdout == "done\n" and result.wall_time > 2.0


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_waiting_for_a_cpu_does_not_count_against_the_deadline(make_kernel, semantics: str) -> None:
    if not os.path.exists("/proc/self/schedstat") or 0 not in os.sched_getaffinity(0):
        pytest.skip("needs /proc/<pid>/schedstat and CPU 0")
    kernel = await make_kernel(semantics, step_ceiling_factor=30)
    # Three spinners pinned to CPU 0, each in its own session (so its own
    # scheduler autogroup where those are on): a step pinned there gets about
    # a quarter of the CPU whether or not autogroups are enabled. Each says
    # when it is pinned and spinning, so the step cannot run before them.
    spin = "import os, sys\nos.sched_setaffinity(0, {0})\nprint('ready', flush=True)\nwhile True: pass"
    spinners = [
        subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True, start_new_session=True)
        for _ in range(3)
    ]
    try:
        for proc in spinners:
            assert await asyncio.to_thread(proc.stdout.readline) == "ready\n"
        # 0.6 s of CPU under a 1.0 s limit: about 2.4 s of wall time at a quarter share.
        result = await kernel.run_code(
            "import os, time\nos.sched_setaffinity(0, {0})\n"
            "t = time.process_time()\nwhile time.process_time() - t < 0.6: pass\nprint('done')",
            timeout=1.0,
        )
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    assert result.error is None, result.error
    assert result.stdout == "done\n"
    assert result.wall_time > 1.0, "the step was not starved: the test proves nothing"
    # A spinning step still times out at its limit when it gets the CPU.
    spinning = await kernel.run_code("while True: pass", timeout=0.5)
    assert spinning.timed_out and spinning.error is not None and spinning.error.type == "StepTimeout"


async def test_the_ceiling_bounds_a_step_that_blocks_its_alarm(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    started = time.monotonic()
    result = await kernel.run_code(
        "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\ntime.sleep(60)", timeout=0.5
    )
    assert result.timed_out and "killed" in result.error.message  # type: ignore[union-attr]
    assert time.monotonic() - started < 10
    assert psutil.pid_exists(os.getpid())
