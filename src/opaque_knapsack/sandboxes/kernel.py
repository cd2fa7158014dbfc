"""The harness's side of a kernel: start it, run code blocks in it, stop it.

A ``Kernel`` owns one kernel process (see ``_kernel.py`` for the layout), its
working directory and its private uid. Every wait on the kernel has a
deadline, every frame a size limit, every message is validated; whatever the
agent's code does to its channel, the harness sees a ``StepResult``.

Kernels are forked by the harness's zygote (see ``launcher.py``), or spawned
directly with ``launcher="direct"``. All live kernels are in a registry, killed
(with the zygote) at interpreter exit (atexit), by ``kill_all_kernels()`` and on
every cleanup path of the providers.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import ValidationError

from . import _confine
from .config import RuntimeConfig
from .launcher import (
    KERNEL_SCRIPT,
    ZYGOTE,
    ZygoteDied,
    ZygoteError,
    await_pidfd,
    kernel_env,
    kill_pidfd,
    launch_direct,
    pidfd_exited,
    wait_pidfds,
)
from .protocol import (
    HEADER,
    ExitMessage,
    ExitStatus,
    ReadyMessage,
    ResultMessage,
    StepError,
    StepRequest,
    StepResult,
    ToolCallMessage,
    ToolCallRecord,
    ToolReply,
    ToolSpec,
    control_message_adapter,
    encode_frame,
    step_message_adapter,
)

Semantics = Literal["persistent", "stateless"]
Launcher = Literal["zygote", "direct"]

__all__ = ["KERNEL_SCRIPT", "Kernel", "KernelError", "kernel_env", "kill_all_kernels", "live_kernels"]

_START_TIMEOUT = 15.0
_EXIT_TIMEOUT = 3.0
_TIMEOUT_GRACE = 1.0
_UID_BASE = 0x40000000
_EXEC_ERROR_MARKER = "opaque-knapsack-exec-error errno="
WORKDIR_PREFIX = "ok-kernel-"  # + the harness pid: `inspect sandbox cleanup` finds a dead harness's


class KernelError(RuntimeError):
    """The kernel could not be started or confined."""


class _ChildGone(Exception):
    """The step process ended or broke the protocol mid-step."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Protection:
    """Which isolation layers this machine lets the runtime apply."""

    uid_drop: bool
    """Kernels run as a private unprivileged uid (needs root)."""
    landlock_abi: int
    """Landlock ABI used to confine the filesystem (0: none)."""
    seccomp: bool
    """The seccomp-BPF syscall filter is installed (x86_64 Linux)."""

    def missing(self) -> list[str]:
        gaps = []
        if not self.uid_drop:
            gaps.append("uid drop (not running as root)")
        if self.landlock_abi <= 0:
            gaps.append("Landlock")
        if not self.seccomp:
            gaps.append("seccomp")
        return gaps


@cache
def probe_protection() -> Protection:
    return Protection(
        uid_drop=hasattr(os, "geteuid") and os.geteuid() == 0,
        landlock_abi=_confine.landlock_abi(),
        seccomp=_confine.seccomp_available(),
    )


_uid_counter = itertools.count()
_uids_in_use: set[int] = set()


def _allocate_uid() -> int:
    # Private per kernel: its processes can only signal each other, and
    # RLIMIT_NPROC counts only them. Derived from the harness pid so two
    # harnesses on one machine do not collide.
    base = _UID_BASE + ((os.getpid() & 0xFFFFF) << 10)
    for _ in range(1024):
        uid = base + (next(_uid_counter) & 0x3FF)
        if uid not in _uids_in_use:
            _uids_in_use.add(uid)
            return uid
    raise KernelError("no free kernel uid")


def _existing(paths: list[str]) -> list[str]:
    seen: list[str] = []
    for p in paths:
        if p and os.path.exists(p) and p not in seen:
            seen.append(p)
    return seen


@cache
def _python_paths(site_packages: bool) -> list[str]:
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    paths = [stdlib, os.path.join(stdlib, "lib-dynload")]
    if site_packages:
        paths += [os.path.realpath(sysconfig.get_path(k)) for k in ("purelib", "platlib")]
    return _existing(paths)


_LIVE: dict[int, Kernel] = {}


def kill_all_kernels(wait: float = 2.0) -> int:
    """Kill every kernel this process started, and the zygote (cancel, Ctrl+C, interpreter exit).

    Blocks (at most ``wait`` seconds) until they are gone: not for the event loop's common path.
    """
    kernels = list(_LIVE.values())
    for kernel in kernels:
        kernel.kill()
    ZYGOTE.stop()
    dying = [kernel._dying for kernel in kernels]
    wait_pidfds([pidfd for entries in dying for pidfd, _ in entries], wait)
    for entries in dying:
        _bury(entries)
    ZYGOTE.wait_stopped(wait)
    return len(kernels)


async def stop_zygote_if_idle() -> bool:
    """Stop the zygote when no kernel is alive (a task's cleanup); the next kernel restarts it."""
    if _LIVE:
        return False
    await ZYGOTE.stop_and_wait()
    return True


def _bury(entries: list[tuple[int, subprocess.Popen[bytes] | None]]) -> None:
    """Close the pidfds of exited kernels (and reap the directly spawned ones)."""
    for pidfd, proc in entries:
        os.close(pidfd)
        if proc is not None:
            proc.poll()
    entries.clear()


atexit.register(kill_all_kernels)
os.register_at_fork(after_in_child=_LIVE.clear)  # a fork of the harness must not kill the parent's kernels


def live_kernels() -> list[Kernel]:
    return list(_LIVE.values())


@dataclass
class _Child:
    pid: int
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    steps: int = 0


class Kernel:
    """One sample's kernel: a kernel process plus its current step process.

    ``launcher``: ``"zygote"`` (default) forks the kernel from the harness's
    zygote; ``"direct"`` spawns a fresh interpreter (the old path: slower, and
    its ``fork_exec`` blocks the event loop).
    """

    def __init__(
        self, semantics: Semantics, config: RuntimeConfig, workdir: str | None = None, launcher: Launcher = "zygote"
    ) -> None:
        self.semantics: Semantics = semantics
        self.config = config
        self.launcher: Launcher = launcher
        self.task_name: str | None = None
        self.protection = probe_protection()
        if config.require_isolation and self.protection.missing():
            raise KernelError("isolation required but unavailable: " + ", ".join(self.protection.missing()))
        self.uid: int | None = _allocate_uid() if self.protection.uid_drop else None
        self._own_workdir = workdir is None
        self.workdir = os.path.realpath(workdir or tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        if self.uid is not None:
            os.chown(self.workdir, self.uid, self.uid)
        os.chmod(self.workdir, 0o700)
        self._pid: int | None = None
        self._pidfd: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None  # directly spawned only
        self._dying: list[tuple[int, subprocess.Popen[bytes] | None]] = []  # killed, not yet awaited
        self.launched_by: Launcher | None = None
        self._ctl: socket.socket | None = None
        self._child: _Child | None = None
        self._ready: deque[_Child] = deque()
        self._exits: dict[int, ExitStatus] = {}
        self._lock = asyncio.Lock()
        self._step_counter = 0
        self._state_lost = False
        self._closed = False

    # ---- process management -------------------------------------------------

    def _base_cfg(self) -> dict[str, Any]:
        limits = {
            "RLIMIT_AS": self.config.memory_mb * 1024 * 1024,
            "RLIMIT_CORE": 0,
            "RLIMIT_FSIZE": self.config.max_file_mb * 1024 * 1024,
            "RLIMIT_NOFILE": self.config.max_open_files,
        }
        if self.uid is not None:
            limits["RLIMIT_NPROC"] = self.config.max_processes
        return {
            "uid": self.uid,
            "gid": self.uid,
            "harness_pid": os.getpid(),
            "rlimits": limits,
            "import_paths": list(_python_paths(self.config.allow_site_packages)),
            "landlock": self.protection.landlock_abi > 0,
            "seccomp": self.protection.seccomp,
            "max_message_bytes": self.config.max_message_bytes,
        }

    def _start_message(self) -> dict[str, Any]:
        cfg = self._base_cfg()
        cfg.update(
            semantics=self.semantics,
            prebound_modules=list(self.config.prebound_modules),
            read_only_paths=_existing(
                _python_paths(self.config.allow_site_packages)
                + ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/dev/urandom"]
            ),
            read_write_paths=[self.workdir, "/dev/null"],
        )
        return {"cfg": cfg, "env": kernel_env(self.workdir), "cwd": self.workdir}

    async def _spawn(self) -> None:
        _LIVE[id(self)] = self  # before any await: a task's cleanup must not stop the zygote under us
        self._bury_exited()
        start = self._start_message()
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                if self.launcher == "direct" or not ZYGOTE.usable_from(loop):
                    self._pid, self._pidfd, self._popen = launch_direct(start, theirs)
                    self.launched_by = "direct"
                else:
                    self._pid, self._pidfd = await ZYGOTE.launch(start, theirs)
                    self.launched_by = "zygote"
            except ZygoteDied as exc:
                ctl.close()
                if attempt:
                    raise KernelError(f"could not start a kernel: {exc} (twice in a row)") from None
                continue  # a fresh zygote gets one more try
            except ZygoteError as exc:
                ctl.close()
                raise KernelError(str(exc)) from None
            except BaseException:
                ctl.close()
                raise
            finally:
                theirs.close()
            break
        ctl.setblocking(False)
        self._ctl = ctl

    async def start(self) -> None:
        # A kernel forked just before its zygote died dies with it before it is
        # ready: one more start from the fresh zygote, then a clear error.
        for attempt in range(2):
            if self._pidfd is None:
                await self._spawn()
            try:
                await self._acquire_child()
                return
            except KernelError:
                if attempt:
                    raise
                self.kill()

    def kill(self) -> None:
        """Kill the kernel and its step processes now (synchronous, never waits; safe to repeat)."""
        pids = [c.pid for c in self._ready] + ([self._child.pid] if self._child else [])
        for child in list(self._ready) + ([self._child] if self._child else []):
            child.sock.close()
        self._ready.clear()
        self._child = None
        for pid in pids:
            _kill_group(pid)
        if self._pidfd is not None:
            # Through the pidfd: a kernel forked by the zygote is not our child, so its
            # pid could be reused once it is gone. Its step processes die with it
            # (parent-death signal); its group is killed only while it still exists.
            if self._pid is not None and not pidfd_exited(self._pidfd):
                _kill_group(self._pid)
            kill_pidfd(self._pidfd)
            self._dying.append((self._pidfd, self._popen))
            self._pidfd = self._pid = self._popen = None
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        _LIVE.pop(id(self), None)

    def _bury_exited(self) -> None:
        exited = [entry for entry in self._dying if pidfd_exited(entry[0])]
        if exited:
            self._dying = [entry for entry in self._dying if entry not in exited]
            _bury(exited)

    async def close(self) -> None:
        self._closed = True
        self.kill()
        for pidfd, _proc in self._dying:
            await await_pidfd(pidfd, _EXIT_TIMEOUT)
        _bury(self._dying)
        if self.uid is not None:
            _uids_in_use.discard(self.uid)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return self._pid

    def process_ids(self) -> list[int]:
        """Pids of the kernel process and its known step processes."""
        pids = [self._pid] if self._pid is not None else []
        pids += [c.pid for c in self._ready] + ([self._child.pid] if self._child else [])
        return pids

    # ---- control channel ----------------------------------------------------

    async def _readable(self, sock: socket.socket, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(sock.fileno(), ready)
        try:
            async with asyncio.timeout(timeout):
                await fut
        finally:
            loop.remove_reader(sock.fileno())

    async def _read_control(self, timeout: float) -> bool:
        """Read one control message; False when the kernel process is gone."""
        assert self._ctl is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._ctl, 4096, 2)
                break
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("kernel did not answer") from None
                await self._readable(self._ctl, remaining)
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        try:
            msg = control_message_adapter.validate_json(data)
        except ValidationError:
            for fd in fds:
                os.close(fd)
            return True
        if isinstance(msg, ReadyMessage):
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                return True
            sock = socket.socket(fileno=fds[0])
            sock.setblocking(False)
            self._ready.append(_Child(pid=msg.pid, sock=sock))
        else:
            for fd in fds:
                os.close(fd)
            self._exits[msg.pid] = msg.status
            if len(self._exits) > 64:
                self._exits.pop(next(iter(self._exits)))
            for child in list(self._ready):
                if child.pid == msg.pid:
                    self._ready.remove(child)
                    child.sock.close()
        return True

    def _drain_control(self) -> bool:
        """Consume control messages already waiting; False when the kernel process is gone."""
        while True:
            try:
                data, fds, _f, _a = socket.recv_fds(self._ctl, 4096, 2)  # type: ignore[arg-type]
            except BlockingIOError:
                return True
            for fd in fds[1:]:
                os.close(fd)
            if not data:
                return False
            try:
                msg = control_message_adapter.validate_json(data)
            except ValidationError:
                for fd in fds[:1]:
                    os.close(fd)
                continue
            if isinstance(msg, ReadyMessage) and fds:
                sock = socket.socket(fileno=fds[0])
                sock.setblocking(False)
                self._ready.append(_Child(pid=msg.pid, sock=sock))
            else:
                for fd in fds[:1]:
                    os.close(fd)
                if isinstance(msg, ExitMessage):
                    self._exits[msg.pid] = msg.status
                    if self._child is not None and self._child.pid == msg.pid:
                        self._state_lost = self._state_lost or self._child.steps > 0
                        self._child.sock.close()
                        self._child = None

    async def _acquire_child(self) -> bool:
        """Make sure a live step process is current; True if state was lost on the way."""
        if self._ctl is None or not self._drain_control():
            self._state_lost = self._state_lost or (self._child is not None and self._child.steps > 0)
            self.kill()
            await self._spawn()
        lost, self._state_lost = self._state_lost, False
        if self._child is not None:
            return lost
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self._read_control(remaining):
                self.kill()
                raise KernelError("the kernel process did not start (is the Python install readable?)")
        self._child = self._ready.popleft()
        return lost

    async def _await_exit(self, pid: int) -> ExitStatus | None:
        deadline = time.monotonic() + _EXIT_TIMEOUT
        while pid not in self._exits:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                if not await self._read_control(remaining):
                    return None
            except TimeoutError:
                return None
        return self._exits.pop(pid)

    def _retire_child(self, kill: bool) -> _Child | None:
        child, self._child = self._child, None
        if child is not None:
            child.sock.close()
            if kill:
                _kill_group(child.pid)
        return child

    # ---- step channel ----------------------------------------------------------

    async def _read_frame(self, child: _Child) -> ToolCallMessage | ResultMessage:
        loop = asyncio.get_running_loop()
        buf = child.buffer
        limit = self.config.max_message_bytes
        while True:
            if len(buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(buf)
                if size > limit:
                    raise _ChildGone("KernelProtocolError", f"the kernel sent a {size}-byte message (limit {limit})")
                end = HEADER.size + size
                if len(buf) >= end:
                    payload = bytes(buf[HEADER.size : end])
                    del buf[:end]
                    try:
                        return step_message_adapter.validate_json(payload)
                    except ValidationError as exc:
                        raise _ChildGone("KernelProtocolError", f"the kernel sent an invalid message: {exc.errors()[0]['msg']}") from None
            try:
                chunk = await loop.sock_recv(child.sock, 1 << 18)
            except OSError as exc:
                raise _ChildGone("KernelCrash", f"kernel channel failed: {exc}") from None
            if not chunk:
                raise _ChildGone("KernelCrash", "the kernel process died")
            buf += chunk

    async def _send(self, child: _Child, message: StepRequest | ToolReply) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(child.sock, encode_frame(message))
        except OSError as exc:
            raise _ChildGone("KernelCrash", f"the kernel process died ({exc.strerror})") from None

    async def _serve_tool_call(
        self,
        child: _Child,
        call: ToolCallMessage,
        host_functions: Mapping[str, Callable[..., Any]],
        calls_made: int,
        limit: int | None,
    ) -> ToolCallRecord:
        record = ToolCallRecord(name=call.name, args=call.args, kwargs=call.kwargs)
        fn = host_functions.get(call.name)
        reply = ToolReply(id=call.id, ok=False)
        if fn is None:
            reply.error = record.error = f"unknown tool {call.name!r}"
        elif limit is not None and calls_made > limit:
            reply.limit = True
            reply.error = record.error = (
                f"tool call limit reached: at most {limit} tool calls per code block; {call.name}() was not called"
            )
        else:
            try:
                value = fn(*call.args, **call.kwargs)
                if inspect.isawaitable(value):
                    value = await value
                json.dumps(value)
            except Exception as exc:  # any host failure becomes the agent's ToolError
                reply.error = record.error = str(exc) or type(exc).__name__
            else:
                reply.ok = True
                reply.value = record.result = value
        await self._send(child, reply)
        return record

    # ---- running code -----------------------------------------------------------

    async def run_code(
        self,
        code: str,
        host_functions: Mapping[str, Callable[..., Any]] | None = None,
        *,
        max_tool_calls: int | None = None,
        timeout: float | None = None,
    ) -> StepResult:
        if self._closed:
            raise KernelError("the runtime was cleaned up")
        async with self._lock:
            return await self._run(code, dict(host_functions or {}), max_tool_calls, timeout)

    async def _run(
        self, code: str, host_functions: dict[str, Callable[..., Any]], max_tool_calls: int | None, timeout: float | None
    ) -> StepResult:
        step_timeout = float(timeout if timeout is not None else self.config.step_timeout)
        limit = max_tool_calls if max_tool_calls is not None else self.config.max_tool_calls
        persistent = self.semantics == "persistent"
        lost = await self._acquire_child()
        child = self._child
        assert child is not None
        self._step_counter += 1
        request = StepRequest(
            step=self._step_counter,
            code=code,
            tools=[ToolSpec(name=name, doc=inspect.getdoc(fn)) for name, fn in host_functions.items()],
            timeout=step_timeout,
            max_output_chars=self.config.max_output_chars,
        )
        records: list[ToolCallRecord] = []
        started = time.perf_counter()
        try:
            async with asyncio.timeout(step_timeout + _TIMEOUT_GRACE):
                await self._send(child, request)
                while True:
                    msg = await self._read_frame(child)
                    if isinstance(msg, ResultMessage):
                        break
                    records.append(await self._serve_tool_call(child, msg, host_functions, len(records) + 1, limit))
        except (_ChildGone, TimeoutError) as exc:
            wall = time.perf_counter() - started
            return await self._fault_result(child, exc, records, wall, step_timeout, persistent)
        except BaseException:
            # Cancelled (or the harness failed) mid-step: the channel is out of
            # step, so the step process goes; a persistent runtime reports the loss next time.
            self._retire_child(kill=True)
            self._state_lost = persistent
            raise
        wall = time.perf_counter() - started
        child.steps += 1
        if not persistent:
            self._retire_child(kill=False)
        return self._result(msg, records, wall, lost and persistent)

    def _result(self, msg: ResultMessage, records: list[ToolCallRecord], wall: float, restarted: bool) -> StepResult:
        stdout = msg.stdout
        cap = self.config.max_output_chars
        truncated = msg.truncated_chars > 0
        if len(stdout) > cap + 200:  # the kernel is untrusted: cap again
            cut = len(stdout) - cap
            stdout = f"{stdout[: cap // 2]}\n... [output truncated: {cut} characters cut] ...\n{stdout[-(cap - cap // 2):]}"
            truncated = True
        error = msg.error
        if restarted:
            stdout = _RESTART_NOTE + stdout
        return StepResult(
            stdout=stdout,
            error=error,
            is_name_error=msg.is_name_error and error is not None,
            tool_calls=records,
            wall_time=wall,
            globals=msg.globals if self.semantics == "persistent" else None,
            bound_at_start=msg.bound_at_start if self.semantics == "persistent" else [],
            timed_out=msg.timed_out,
            kernel_restarted=restarted,
            output_truncated=truncated,
        )

    async def _fault_result(
        self,
        child: _Child,
        exc: Exception,
        records: list[ToolCallRecord],
        wall: float,
        step_timeout: float,
        persistent: bool,
    ) -> StepResult:
        self._retire_child(kill=True)
        status = await self._await_exit(child.pid)
        timed_out = isinstance(exc, TimeoutError)
        if timed_out:
            kind = "StepTimeout"
            detail = f"step exceeded the {step_timeout:g} s wall-time limit and was killed"
        else:
            assert isinstance(exc, _ChildGone)
            kind, detail = exc.kind, exc.detail
            if status is not None and kind == "KernelCrash":
                detail += f" ({_describe_status(status)})"
        restarted = persistent  # the step process held the state: killing it lost everything
        message = detail
        if persistent:
            message += "; the interpreter was restarted and all state (variables, imports, definitions) was lost"
        return StepResult(
            stdout=_RESTART_NOTE if restarted else "",
            error=StepError(type=kind, message=message, traceback=f"{kind}: {message}\n"),
            is_name_error=False,
            tool_calls=records,
            wall_time=wall,
            globals=[] if persistent else None,
            timed_out=timed_out,
            kernel_restarted=restarted,
        )


_RESTART_NOTE = "[kernel restarted: all previous state (variables, imports, definitions) was lost]\n"


def _describe_status(status: ExitStatus) -> str:
    if status.signal is not None:
        try:
            name = signal.Signals(status.signal).name
        except ValueError:
            name = str(status.signal)
        return f"killed by {name}"
    return f"exit status {status.code}"


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
