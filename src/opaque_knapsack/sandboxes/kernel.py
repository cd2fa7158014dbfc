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
import gc
import inspect
import itertools
import json
import logging
import os
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

from . import _confine, _fs
from ._wire import cap_names
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

logger = logging.getLogger(__name__)

_START_TIMEOUT = 15.0
_EXIT_TIMEOUT = 3.0
_TIMEOUT_GRACE = 1.0
_FRAME_HEADROOM = 64 * 1024
_STEP_BYTES_FRAMES = 16  # a step may send at most this many maximal frames' worth of bytes
# Call records kept (the rest counted in tool_calls_omitted; see _RecordKeeper).
_REFUSED_SAMPLE = 20
_MAX_RECORDS_PER_STEP = 1000
_MAX_RECORD_BYTES = 16 * 1024
_STEP_RECORD_BYTES = 1024 * 1024
_EPISODE_RECORD_BYTES = 16 * 1024 * 1024
_ARGS_SAMPLE_CHARS = 256
_UID_BASE = 0x40000000
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
    pidfd: int | None = None
    """From K, opened before K could reap the child: kills never reach a reused pid."""
    buffer: bytearray = field(default_factory=bytearray)
    steps: int = 0
    received: int = 0
    """Bytes read during the current step (bounded: see _STEP_BYTES_FRAMES)."""
    waited: bool = True
    """The last read had to wait for the kernel (so the loop ran other tasks since)."""

    def kill(self) -> None:
        if self.pidfd is not None:
            kill_pidfd(self.pidfd)
        else:
            _kill_group(self.pid)

    def close(self) -> None:
        self.sock.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _run_delay(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


class _StepDeadline:
    """The harness's deadline for a step: the step's own work, plus a hard ceiling.

    ``limit`` counts wall time minus tool round trips (from the kernel's
    ``sent_at``, clamped) minus the time the step process waited for a CPU;
    ``ceiling`` counts wall time minus the time host functions ran (measured
    here, so a kernel lying about ``sent_at`` cannot stretch it).
    """

    def __init__(self, limit: float, ceiling: float, pid: int) -> None:
        self.limit = limit
        self.ceiling = ceiling
        self.pid = pid
        self.started = time.monotonic()
        self.paused = 0.0
        self.host_time = 0.0
        self.last_answer = self.started
        self.delay0: float | None = None

    def remaining(self) -> float:
        """Seconds until the deadline must be checked again; 0 when the step is out of time."""
        now = time.monotonic()
        active = now - self.started - self.host_time
        if active >= self.ceiling:
            return 0.0
        own = now - self.started - self.paused
        if self.delay0 is None:
            # The CPU-wait baseline is read half way, not at every step's start (a /proc
            # read costs as much as a trivial step): waits in the first half are not credited.
            half = self.limit / 2
            if own < half:
                return half - own
            self.delay0 = _run_delay(self.pid)
        left = self.limit - own
        if left <= 0:  # past the wall budget: time spent waiting for a CPU does not count
            left = self.limit - (own - (_run_delay(self.pid) - self.delay0))
        return max(0.0, min(left, self.ceiling - active))

    def tool_call(self, sent_at: float | None, received: float, answered: float, host_time: float) -> None:
        since = received if sent_at is None else min(max(sent_at, self.last_answer), received)
        self.paused += max(0.0, answered - since)
        self.host_time += host_time
        self.last_answer = answered


@dataclass
class _RecordKeeper:
    """Bounded call records: refused calls beyond a sample are counted, large arguments truncated.

    Every frame used to be kept with its parsed arguments, so refused calls could
    grow the harness's memory by hundreds of MB in seconds. Executed calls keep a
    record (their count is exact); their arguments are kept whole only within
    per-call, per-step and per-episode byte bounds.
    """

    episode_budget: list[int]
    records: list[ToolCallRecord] = field(default_factory=list)
    refused_kept: int = 0
    omitted: int = 0
    truncated: int = 0
    step_bytes: int = 0

    def add(self, record: ToolCallRecord, frame_bytes: int, head: bytes, executed: bool) -> None:
        if (not executed and self.refused_kept >= _REFUSED_SAMPLE) or len(self.records) >= _MAX_RECORDS_PER_STEP:
            self.omitted += 1
            return
        cost = frame_bytes
        if (
            frame_bytes > _MAX_RECORD_BYTES
            or self.step_bytes + cost > _STEP_RECORD_BYTES
            or self.episode_budget[0] < cost
        ):
            record.args = [head[:_ARGS_SAMPLE_CHARS].decode("utf-8", "replace")]
            record.kwargs = {}
            record.args_truncated = True
            cost = _ARGS_SAMPLE_CHARS + 64
            self.truncated += 1
        self.step_bytes += cost
        self.episode_budget[0] -= cost
        if not executed:
            self.refused_kept += 1
        self.records.append(record)


def _escape_surrogates(value: Any) -> Any:
    """Lone surrogates cannot be written as UTF-8 (Inspect's log among others): escape them as text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escape_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    return value


_SMALL_FRAME = 64 * 1024


def _parse_frame(payload: bytes) -> ToolCallMessage | ResultMessage:
    """Validate one frame. For a large one the collector is off meanwhile: with it, a frame
    of many small containers costs many times more (the loop is held while a frame is parsed)."""
    if len(payload) <= _SMALL_FRAME:  # the common case: one pass (lone surrogate escapes are refused)
        try:
            return step_message_adapter.validate_json(payload)
        except ValidationError as exc:
            raise _ChildGone("KernelProtocolError", f"the kernel sent an invalid message: {exc.errors()[0]['msg']}") from None
    enabled = gc.isenabled()
    gc.disable()
    try:
        value = json.loads(payload)
        if b"\\ud" in payload or b"\\uD" in payload:
            value = _escape_surrogates(value)
        return step_message_adapter.validate_python(value)
    except ValidationError as exc:
        raise _ChildGone("KernelProtocolError", f"the kernel sent an invalid message: {exc.errors()[0]['msg']}") from None
    except (ValueError, RecursionError):
        raise _ChildGone("KernelProtocolError", "the kernel sent a message that is not JSON") from None
    finally:
        if enabled:
            gc.enable()


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
        self._steps_since_restart = 0  # steps whose state the current interpreter may hold
        self._state_lost = False
        self._closed = False
        self._retired: _Child | None = None  # a stateless step's killed process, not yet seen dead
        self._record_budget = [_EPISODE_RECORD_BYTES]  # call-record bytes left for this episode
        self._frame_limit = max(config.max_message_bytes, 8 * config.max_output_chars + _FRAME_HEADROOM)

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
        for child in list(self._ready) + [c for c in (self._child, self._retired) if c is not None]:
            child.kill()
            child.sock.close()
            if child.pidfd is not None:  # close() waits for it to be gone, as for the kernel process
                self._dying.append((child.pidfd, None))
                child.pidfd = None
        self._ready.clear()
        self._child = self._retired = None
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
            await _remove_workdir(self.workdir)

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
            self._adopt(msg, fds)
        else:
            for fd in fds:
                os.close(fd)
            self._exits[msg.pid] = msg.status
            if len(self._exits) > 64:
                self._exits.pop(next(iter(self._exits)))
            for child in list(self._ready):
                if child.pid == msg.pid:
                    self._ready.remove(child)
                    child.close()
        return True

    def _drain_control(self) -> bool:
        """Consume control messages already waiting; False when the kernel process is gone."""
        while True:
            try:
                data, fds, _f, _a = socket.recv_fds(self._ctl, 4096, 2)  # type: ignore[arg-type]
            except BlockingIOError:
                return True
            if not data:
                for fd in fds:
                    os.close(fd)
                return False
            try:
                msg = control_message_adapter.validate_json(data)
            except ValidationError:
                for fd in fds:
                    os.close(fd)
                continue
            if isinstance(msg, ReadyMessage):
                self._adopt(msg, fds)
            else:
                for fd in fds:
                    os.close(fd)
                if isinstance(msg, ExitMessage):
                    self._exits[msg.pid] = msg.status
                    if self._child is not None and self._child.pid == msg.pid:
                        self._state_lost = self._state_lost or self._child.steps > 0
                        self._child.close()
                        self._child = None

    def _adopt(self, msg: ReadyMessage, fds: list[int]) -> None:
        """A new step process: its channel end and (from K) a pidfd for it."""
        if len(fds) not in (1, 2):
            for fd in fds:
                os.close(fd)
            return
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(False)
        self._ready.append(_Child(pid=msg.pid, sock=sock, pidfd=fds[1] if len(fds) == 2 else None))

    async def _acquire_child(self) -> bool:
        """Make sure a live step process is current; True if state was lost on the way."""
        if self._ctl is None or not self._drain_control():
            self._state_lost = self._state_lost or (self._child is not None and self._child.steps > 0)
            self.kill()
            await self._spawn()
        lost, self._state_lost = self._state_lost, False
        if self._child is not None:
            return lost
        for attempt in range(2):
            if await self._await_ready():
                break
            # No spare step process in time: the kernel is stuck; a fresh one gets one more try.
            self._state_lost = False
            lost = lost or self._child_had_state()
            self.kill()
            if attempt:
                raise KernelError(
                    "the kernel process did not start, or gave no step process in time (twice in a row; "
                    "is the Python install readable and the working directory there?)"
                )
            await self._spawn()
        self._child = self._ready.popleft()
        return lost

    def _child_had_state(self) -> bool:
        # Steps since the last restart the runtime announced: a restart is announced once.
        return self.semantics == "persistent" and self._steps_since_restart > 0

    async def _await_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._ready:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or not await self._read_control(remaining):
                    return False
            except TimeoutError:
                return False
        return True

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
            if kill:
                child.kill()
            child.sock.close()
        return child

    # ---- step channel ----------------------------------------------------------

    async def _wait_io(self, sock: socket.socket, deadline: _StepDeadline, write: bool = False) -> None:
        """Wait until ``sock`` is readable (or writable), within the step's deadline."""
        loop = asyncio.get_running_loop()
        fd = sock.fileno()
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise TimeoutError
            fut: asyncio.Future[bool] = loop.create_future()

            def ready(timed_out: bool = False, fut: asyncio.Future[bool] = fut) -> None:
                if not fut.done():
                    fut.set_result(timed_out)

            (loop.add_writer if write else loop.add_reader)(fd, ready)
            timer = loop.call_later(remaining, ready, True)  # lighter than asyncio.timeout, on every wait
            try:
                if not await fut:
                    return
                # timed out: re-check (time waiting for a CPU may not count)
            finally:
                timer.cancel()
                (loop.remove_writer if write else loop.remove_reader)(fd)

    async def _read_frame(self, child: _Child, deadline: _StepDeadline) -> tuple[ToolCallMessage | ResultMessage, int, bytes]:
        """The next frame (validated), its size and its first bytes.

        Never holds the loop for more than one frame: when frames keep coming
        (no wait on the socket since the last one), it yields before the next.
        """
        buf = child.buffer
        limit = self._frame_limit
        while True:
            if len(buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(buf)
                if size > limit:
                    raise _ChildGone("KernelProtocolError", f"the kernel sent a {size}-byte message (limit {limit})")
                end = HEADER.size + size
                if len(buf) >= end:
                    payload = bytes(buf[HEADER.size : end])
                    del buf[:end]
                    if not child.waited:
                        await asyncio.sleep(0)
                    child.waited = False
                    return _parse_frame(payload), size, payload
            try:
                chunk = child.sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                await self._wait_io(child.sock, deadline)
                child.waited = True
                continue
            except OSError as exc:
                raise _ChildGone("KernelCrash", f"kernel channel failed: {exc}") from None
            if not chunk:
                raise _ChildGone("KernelCrash", "the kernel process died")
            child.received += len(chunk)
            if child.received > _STEP_BYTES_FRAMES * limit:
                raise _ChildGone(
                    "KernelProtocolError", f"the kernel sent more than {_STEP_BYTES_FRAMES * limit} bytes in one step"
                )
            buf += chunk

    async def _send(self, child: _Child, message: StepRequest | ToolReply, deadline: _StepDeadline) -> None:
        data = memoryview(encode_frame(message))
        while data:
            try:
                sent = child.sock.send(data)
            except (BlockingIOError, InterruptedError):
                await self._wait_io(child.sock, deadline, write=True)
                continue
            except OSError as exc:
                raise _ChildGone("KernelCrash", f"the kernel process died ({exc.strerror})") from None
            data = data[sent:]

    async def _call_host(
        self,
        call: ToolCallMessage,
        host_functions: Mapping[str, Callable[..., Any]],
        calls_made: int,
        limit: int | None,
    ) -> tuple[ToolCallRecord, ToolReply, bool]:
        """Run one host function for the kernel: its record, the reply, whether it was called."""
        record = ToolCallRecord(name=call.name, args=call.args, kwargs=call.kwargs)
        fn = host_functions.get(call.name)
        reply = ToolReply(id=call.id, ok=False)
        if fn is None:
            reply.error = record.error = f"unknown tool {call.name!r}"
            return record, reply, False
        if limit is not None and calls_made > limit:
            reply.limit = record.limit = True
            reply.error = record.error = (
                f"tool call limit reached: at most {limit} tool calls per code block; {call.name}() was not called"
            )
            return record, reply, False
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
        return record, reply, True

    # ---- running code -----------------------------------------------------------

    async def run_code(
        self,
        code: str,
        host_functions: Mapping[str, Callable[..., Any]] | None = None,
        *,
        max_tool_calls: int | None = None,
        timeout: float | None = None,
    ) -> StepResult:
        """Run one block; whatever the agent's code does, the answer is a ``StepResult``."""
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
        if self._retired is not None:
            await self._settle_retired()
        try:
            lost = await self._acquire_child()
        except (KernelError, TimeoutError, OSError) as exc:
            return self._unavailable_result(exc, persistent)
        child = self._child
        assert child is not None
        child.received = 0
        child.waited = True
        self._step_counter += 1
        request = StepRequest(
            step=self._step_counter,
            code=code,
            tools=[ToolSpec(name=name, doc=inspect.getdoc(fn)) for name, fn in host_functions.items()],
            timeout=step_timeout,
            max_output_chars=self.config.max_output_chars,
        )
        keeper = _RecordKeeper(self._record_budget)
        limit_s = step_timeout + max(_TIMEOUT_GRACE, 0.1 * step_timeout)
        deadline = _StepDeadline(limit_s, limit_s * self.config.step_ceiling_factor, child.pid)
        started = time.perf_counter()
        try:
            await self._send(child, request, deadline)
            calls = 0
            while True:
                msg, size, head = await self._read_frame(child, deadline)
                if isinstance(msg, ResultMessage):
                    break
                received = time.monotonic()
                if deadline.remaining() <= 0:  # frames kept coming: the deadline holds all the same
                    raise TimeoutError
                record, reply, executed = await self._call_host(msg, host_functions, calls + 1, limit)
                answered = time.monotonic()
                deadline.tool_call(msg.sent_at, received, answered, answered - received if executed else 0.0)
                calls += 1
                keeper.add(record, size, head, executed)
                # Drop the parsed frame before the loop runs anything else: a large one
                # kept alive into the collector's older generations makes full collections
                # of the whole harness heap (seconds, measured) out of the kernel's garbage.
                del msg, record
                await self._send(child, reply, deadline)
        except (_ChildGone, TimeoutError) as exc:
            wall = time.perf_counter() - started
            return await self._fault_result(child, exc, keeper, wall, step_timeout, persistent)
        except BaseException:
            # Cancelled (or the harness failed) mid-step: the channel is out of
            # step, so the step process goes; a persistent runtime reports the loss next time.
            self._retire_child(kill=True)
            child.close()
            self._state_lost = persistent
            raise
        wall = time.perf_counter() - started
        child.steps += 1
        self._steps_since_restart = 1 if lost else self._steps_since_restart + 1
        if not persistent:
            # Whatever the step's code did to its process (patched the kernel, forged
            # this result, cleared handlers), the process ends with its step.
            self._retire_child(kill=True)
            if self.config.stateless_keep_files:
                child.close()
            else:
                self._retired = child  # its files go before the next step runs (see _settle_retired)
        return self._result(msg, keeper, wall, lost and persistent)

    async def _settle_retired(self) -> None:
        """Before a stateless step: the previous step's (killed) process is gone, its files too.

        Done here rather than when that step ended, so a step's result does not
        wait for its process's teardown; the next step cannot start before.
        """
        child, self._retired = self._retired, None
        if child is None:
            return
        if child.pidfd is not None:
            if not pidfd_exited(child.pidfd):
                await await_pidfd(child.pidfd, _EXIT_TIMEOUT)
            child.close()
        if not _fs.is_empty(self.workdir):
            await _clear_workdir(self.workdir)

    def _unavailable_result(self, exc: BaseException, persistent: bool) -> StepResult:
        message = f"the runtime could not run this step: {exc}"
        self._state_lost = False
        self._steps_since_restart = 0
        return StepResult(
            stdout=_RESTART_NOTE if persistent else "",
            error=StepError(type="KernelError", message=message, traceback=f"KernelError: {message}\n"),
            globals=[] if persistent else None,
            kernel_restarted=persistent,
        )

    def _result(self, msg: ResultMessage, keeper: _RecordKeeper, wall: float, restarted: bool) -> StepResult:
        cap = self.config.max_output_chars
        stdout, truncated = _cap(msg.stdout, cap)
        truncated = truncated or msg.truncated_chars > 0
        error = msg.error
        if error is not None:  # the kernel is untrusted: bound its error text as well
            error = StepError(
                type=_cap(error.type, 200)[0], message=_cap(error.message, cap)[0], traceback=_cap(error.traceback, cap)[0]
            )
        if restarted:
            stdout = _RESTART_NOTE + stdout
        names, omitted = _cap_globals(msg.globals, cap) if self.semantics == "persistent" else (None, 0)
        _log_records(self._step_counter, keeper)
        return StepResult(
            stdout=stdout,
            error=error,
            is_name_error=msg.is_name_error and error is not None,
            undefined_name=_cap(msg.undefined_name, 200)[0] if msg.undefined_name and error is not None else None,
            tool_calls=keeper.records,
            wall_time=wall,
            globals=names,
            # untrusted like the rest of the frame: capped as the globals are
            bound_at_start=(_cap_globals(msg.bound_at_start, cap)[0] or []) if self.semantics == "persistent" else [],
            timed_out=msg.timed_out,
            kernel_restarted=restarted,
            output_truncated=truncated,
            tool_calls_omitted=keeper.omitted,
            globals_omitted=omitted + msg.globals_omitted,
        )

    async def _fault_result(
        self,
        child: _Child,
        exc: Exception,
        keeper: _RecordKeeper,
        wall: float,
        step_timeout: float,
        persistent: bool,
    ) -> StepResult:
        self._retire_child(kill=True)
        status = await self._await_exit(child.pid)
        if child.pidfd is not None and not pidfd_exited(child.pidfd):
            await await_pidfd(child.pidfd, _EXIT_TIMEOUT)
        child.close()
        if not persistent and not self.config.stateless_keep_files and not _fs.is_empty(self.workdir):
            await _clear_workdir(self.workdir)
        timed_out = isinstance(exc, TimeoutError)
        if timed_out:
            kind = "StepTimeout"
            detail = f"step exceeded the {step_timeout:g} s time limit and was killed"
        else:
            assert isinstance(exc, _ChildGone)
            kind, detail = exc.kind, exc.detail
            if status is not None and kind == "KernelCrash":
                detail += f" ({_describe_status(status)})"
        restarted = persistent  # the step process held the state: killing it lost everything
        self._steps_since_restart = 0
        _log_records(self._step_counter, keeper)
        return StepResult(
            stdout=_RESTART_NOTE if restarted else "",
            error=StepError(type=kind, message=detail, traceback=f"{kind}: {detail}\n"),
            is_name_error=False,
            tool_calls=keeper.records,
            wall_time=wall,
            globals=[] if persistent else None,
            timed_out=timed_out,
            kernel_restarted=restarted,
            tool_calls_omitted=keeper.omitted,
        )


def _cap(text: str, cap: int) -> tuple[str, bool]:
    """Head and tail of ``text`` within about ``cap`` characters (+ a marker).

    (Lone surrogates cannot be here: ``_parse_frame`` refuses or escapes them.)"""
    if len(text) > cap + 200:
        cut = len(text) - cap
        return f"{text[: cap // 2]}\n... [output truncated: {cut} characters cut] ...\n{text[-(cap - cap // 2):]}", True
    return text, False


def _cap_globals(names: list[str] | None, cap: int) -> tuple[list[str], int]:
    """The kernel's own rule (``_wire.cap_names``), applied again: the kernel is untrusted."""
    return ([], 0) if names is None else cap_names(names, cap)


def _log_records(step: int, keeper: _RecordKeeper) -> None:
    if keeper.omitted or keeper.truncated:
        logger.warning(
            "step %d: %d tool call records left out (counted in tool_calls_omitted) and %d with truncated "
            "arguments, to bound the harness's memory",
            step, keeper.omitted, keeper.truncated,
        )


async def _remove_workdir(path: str) -> None:
    """Delete a kernel's working directory off the event loop; a failure is logged, never raised."""
    try:
        await asyncio.to_thread(_fs.remove_tree, path)
    except (OSError, RecursionError) as exc:
        logger.warning("could not remove the kernel working directory %s: %s", path, exc)


async def _clear_workdir(path: str) -> None:
    """Empty a stateless kernel's working directory between steps (off the loop; failures logged)."""

    def clear() -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _fs.clear_directory(fd)
        finally:
            os.close(fd)

    try:
        await asyncio.to_thread(clear)
    except (OSError, RecursionError) as exc:
        logger.warning("could not empty the kernel working directory %s: %s", path, exc)


_RESTART_NOTE = "[kernel restarted: all previous state (variables, imports, definitions) was lost]\n"
"""The one announcement of a restart: the first line of the result's stdout, with
``kernel_restarted=True``; neither the error nor the agent repeats it."""


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
