"""Starting kernel processes: the zygote (fork server).

Kernels are forked from a zygote: one per harness process, started lazily as
``python -S -s _kernel.py zygote`` (scrubbed environment, its own process
group) before it has seen anything sample-specific. It preloads what a kernel
needs and from then on only forks, so a kernel start costs neither an
interpreter start and its imports (tens of ms of CPU) nor a ``fork_exec`` on
the event loop thread (12-19 ms during which no other sample runs). A kernel
start is one request on the zygote's channel (SOCK_SEQPACKET): the kernel's
start-up message (cfg, environment, working directory) plus the kernel's end
of its control socket (SCM_RIGHTS); the reply is the kernel's pid plus a pidfd
for it. The fork then applies exactly the per-kernel setup a spawned kernel
does (see ``_kernel.zygote_main``).

Nothing here blocks the event loop in the common path: the channel is
non-blocking and read through the loop's selector; kernels are killed through
their pidfd and their end is awaited through it too. Starting the zygote itself
(one ``fork_exec``, once per harness process) is the exception.

Start requests queue in the harness and are served in order, at most
``launch_window`` (see ``registry.Tunables``) on the zygote's channel at a time: a burst waits, it does not fail.
If the zygote dies, the requests it had not answered go back to the head of
the queue and a fresh zygote serves them; only a request caught in two zygote
deaths fails (``ZygoteDied``), and alone.

The zygote is the one launch path that ships. A kernel start from a second
event loop (another thread) while the first has requests on the zygote is
handed to the first loop, which alone reads the zygote's channel, and its
answer comes back thread-safely. ``KernelLauncher`` is the seam a benchmark
uses to measure its baseline (``benchmarks/direct_launch.py`` spawns a fresh
interpreter per kernel: the cost the zygote saves).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import itertools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ._wire import MAX_ZYGOTE_REQUEST, ZYGOTE_REPLY, ZYGOTE_REQUEST
from .registry import REGISTRY

KERNEL_SCRIPT = str(Path(__file__).with_name("_kernel.py").resolve())

_MAX_ATTEMPTS = 2  # zygote deaths a request may be in flight through before it fails


@dataclass(eq=False)
class _Request:
    """One kernel start request: waits in the queue, then on the zygote's channel."""

    id: int
    data: bytes
    fd: int  # the kernel's end of its control socket (the requester keeps it open)
    fut: asyncio.Future[tuple[int, int]]
    attempts: int = 0
    sent_to: int = 0
    seq: int = field(default_factory=lambda: next(_SEQ))


_SEQ = itertools.count()


HARNESS_FDS_PER_KERNEL = 4
"""Descriptors the harness holds per live kernel: control socket, pidfd, step
channel, and a stateless kernel's spare step channel."""


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns (soft, hard) after.

    Each live kernel holds ``HARNESS_FDS_PER_KERNEL`` descriptors in the
    harness, so a default soft limit of 1024 caps a run near 250 concurrent
    samples, while the hard limit is usually far higher and ours to take.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def open_files_advice() -> str:
    """What to do when the harness runs out of descriptors (one line for the sample error)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = soft // HARNESS_FDS_PER_KERNEL
    return (
        f"the harness ran out of file descriptors (RLIMIT_NOFILE soft {soft}, hard {hard}); each concurrent "
        f"sample holds about {HARNESS_FDS_PER_KERNEL}, so this limit allows about {room} samples at once: "
        "raise the hard limit (`ulimit -Hn`, or LimitNOFILE= / nofile in limits.conf) or lower --max-samples"
    )


def _exit_reason(status: int | None) -> str:
    """How a process ended, from its ``poll()`` status (None: still there, but its channel closed)."""
    if status is None:
        return "it closed its channel"
    if status < 0:
        return f"killed by {signal.Signals(-status).name}" if -status in signal.valid_signals() else f"signal {-status}"
    return f"exit status {status}"


class ZygoteError(RuntimeError):
    """The zygote could not start a kernel."""


class ZygoteDied(ZygoteError):
    """The zygote is gone (or was stopped) before it answered."""


def zygote_start_error(exc: OSError) -> ZygoteError:
    """The error for a zygote that could not be started; out of descriptors says what to do."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return ZygoteError(open_files_advice())
    return ZygoteError(f"could not start the kernel launcher (zygote): {exc}")


def kernel_env(workdir: str) -> dict[str, str]:
    """The kernel's whole environment, built from scratch: nothing of the harness's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "SHELL": "/bin/sh",
    }


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process in clock ticks (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def kill_pidfd(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def kill_group(pid: int) -> None:
    """SIGKILL a process group led by ``pid`` (or the process alone); gone already is fine."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def pidfd_exited(pidfd: int) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def wait_pidfds(pidfds: list[int], timeout: float) -> bool:
    """Block until every process behind ``pidfds`` has exited (or ``timeout``); True if all did."""
    deadline = time.monotonic() + timeout
    pending = list(pidfds)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(remaining * 1000)}
        pending = [fd for fd in pending if fd not in ready]
    return True


async def await_pidfd(pidfd: int, timeout: float) -> bool:
    """Wait, without blocking the loop, until the process behind ``pidfd`` has exited."""
    if pidfd_exited(pidfd):
        return True
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    loop.add_reader(pidfd, lambda: fut.done() or fut.set_result(None))
    try:
        async with asyncio.timeout(timeout):
            await fut
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)


def _fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds += struct.unpack(f"{usable // 4}i", data[:usable])
    return fds


@dataclass(frozen=True)
class LaunchedKernel:
    """A kernel process just started: its pid, a pidfd for it (kills never reach a reused pid)."""

    pid: int
    pidfd: int
    process: subprocess.Popen[bytes] | None = None
    """A child of the harness, to reap once it is gone (a launcher that spawns it directly)."""


class KernelLauncher(Protocol):
    """Starts a kernel process: its start-up message (``cfg``, ``env``, ``cwd``) and its end of the control socket.

    Raises ``ZygoteDied`` when a retry may succeed, ``ZygoteError`` when it cannot.
    The caller closes ``control`` once this returns.
    """

    name: str

    async def launch(self, start: dict[str, Any], control: socket.socket) -> LaunchedKernel: ...


class Zygote:
    """The harness's handle on its zygote; one per harness process (``REGISTRY.zygote``)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._queue: deque[_Request] = deque()  # waiting for room in the window
        self._pending: dict[int, _Request] = {}  # sent, not answered
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue_loop: asyncio.AbstractEventLoop | None = None
        self._writer_armed = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._progress = 0.0  # when the zygote last answered (or got its first request)
        self._zygote_cpu: int | None = None  # its CPU ticks at the last stall check
        self._exited: list[subprocess.Popen[bytes]] = []
        self.root_cfg: Callable[[], dict[str, Any]] = _root_cfg
        """The private root the zygote builds for its kernels (``control``'s: the probe lives there)."""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def backlog(self) -> tuple[int, int]:
        """(requests waiting in the queue, requests sent and not yet answered)."""
        return len(self._queue), len(self._pending)

    # ---- lifecycle ---------------------------------------------------------------

    def _start(self) -> None:
        raise_open_files_limit()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            cfg = {"harness_pid": os.getpid(), "channel_fd": theirs.fileno(), **self.root_cfg()}
            # Spawned from the calling (event loop) thread: the zygote's parent-death
            # signal fires when this thread ends, so it must not be a pool thread.
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-s", KERNEL_SCRIPT, "zygote", json.dumps(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                env=kernel_env("/"),
                pass_fds=(theirs.fileno(),),
                process_group=0,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self.starts += 1

    def stop(self, reason: str = "the zygote was stopped") -> subprocess.Popen[bytes] | None:
        """Kill the zygote now (its kernels die with it); fail requests queued or in flight. Returns it, unreaped."""
        pending, self._pending = self._pending, {}
        queue, self._queue = self._queue, deque()
        proc = self._kill()
        for request in [*pending.values(), *queue]:
            if not request.fut.done():
                request.fut.set_exception(ZygoteDied(reason))
        return proc

    def _kill(self) -> subprocess.Popen[bytes] | None:
        self._detach()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for kill in (os.killpg, os.kill):  # an unreaped child of ours: its pid cannot be reused
                try:
                    kill(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if proc.poll() is None:
                self._exited.append(proc)
        self._exited = [p for p in self._exited if p.poll() is None]
        return proc

    def forget(self) -> None:
        """In a fork of the harness (a fork-started worker): let go of the parent's zygote
        without using or killing it (the fork starts its own if it needs one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def wait_stopped(self, timeout: float) -> None:
        """Reap zygotes stopped earlier (blocking, bounded)."""
        deadline = time.monotonic() + timeout
        for proc in self._exited:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._exited = [p for p in self._exited if p.poll() is None]

    async def stop_and_wait(self, timeout: float = 2.0) -> None:
        proc = self.stop()
        if proc is None or proc.poll() is not None:
            return
        try:
            pidfd = os.pidfd_open(proc.pid)
        except OSError:
            return
        try:
            await await_pidfd(pidfd, timeout)
        finally:
            os.close(pidfd)
        proc.poll()
        self._exited = [p for p in self._exited if p.poll() is None]

    def _died(self, how: str | None = None) -> None:
        """The zygote is gone or stuck: requeue what it had not answered, on a fresh zygote."""
        proc = self.proc
        how = how or _exit_reason(proc.poll() if proc is not None else None)
        reason = f"the kernel launcher (zygote, pid {proc.pid if proc else '?'}) died: {how}"
        loop = self._loop
        pending, self._pending = self._pending, {}
        self._kill()
        self._queue_loop = loop or self._queue_loop
        retry = []
        for request in sorted(pending.values(), key=lambda r: r.seq):
            request.attempts += 1
            if request.fut.done():
                continue
            if request.attempts >= _MAX_ATTEMPTS:
                request.fut.set_exception(ZygoteDied(reason))
            else:
                retry.append(request)
        self._queue.extendleft(reversed(retry))
        if self._queue and self._queue_loop is not None and not self._queue_loop.is_closed():
            self._queue_loop.call_soon(self._pump)

    # ---- requests ------------------------------------------------------------------
    #
    # Requests wait in ``_queue`` (FIFO) and at most ``launch_window`` of them are on the
    # zygote's channel at once: a burst of a thousand starts queues here, in the
    # harness, instead of overflowing the channel, and no request times out for
    # waiting its turn. Only a zygote that makes no progress at all for
    # ``zygote_stall_timeout`` while it has requests is declared stuck. When the zygote
    # dies, the requests it had not answered go back to the head of the queue and
    # a fresh zygote serves them; a request that was in flight through
    # ``_MAX_ATTEMPTS`` zygote deaths fails alone, as ``ZygoteDied``.

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            self._detach()
            self._loop = loop
        assert self._sock is not None
        loop.add_reader(self._sock.fileno(), self._on_readable)

    def _detach(self) -> None:
        if self._loop is not None and self._sock is not None and not self._loop.is_closed():
            try:
                self._loop.remove_reader(self._sock.fileno())
                self._loop.remove_writer(self._sock.fileno())
            except (RuntimeError, ValueError):
                pass
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._writer_armed = False
        self._loop = None

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                data, ancdata, flags, _addr = self._sock.recvmsg(ZYGOTE_REPLY.size, socket.CMSG_SPACE(4 * 4))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data, ancdata, flags = b"", [], 0
            fds = _fds(ancdata)
            if len(data) != ZYGOTE_REPLY.size:
                for fd in fds:
                    os.close(fd)
                self._died()
                return
            self._progress = time.monotonic()
            request_id, pid = ZYGOTE_REPLY.unpack(data)
            request = self._pending.pop(request_id, None)
            fut = request.fut if request is not None else None
            if fut is None or fut.done():  # its requester gave up: the kernel is not wanted
                for fd in fds:
                    kill_pidfd(fd)
                    os.close(fd)
            elif pid <= 0 or len(fds) != 1:
                for fd in fds:
                    kill_pidfd(fd)
                    os.close(fd)
                if flags & socket.MSG_CTRUNC:  # the kernel's pidfd did not fit in our descriptor table
                    fut.set_exception(ZygoteError(open_files_advice()))
                    continue
                reason = os.strerror(-pid) if pid < 0 else "it exited at once"
                fut.set_exception(ZygoteError(f"the kernel launcher could not start a kernel: {reason}"))
            else:
                fut.set_result((pid, fds[0]))
        self._pump()

    def _on_writable(self) -> None:
        if self._loop is not None and self._sock is not None:
            self._loop.remove_writer(self._sock.fileno())
        self._writer_armed = False
        self._pump()

    def _pump(self) -> None:
        """Send queued requests while the window has room; never blocks."""
        while self._queue and len(self._pending) < REGISTRY.tunables.launch_window:
            request = self._queue[0]
            if request.fut.done():  # cancelled while queued
                self._queue.popleft()
                continue
            if self._sock is None or self._loop is None:
                self._restart_for_queue()
                if self._sock is None:
                    return
            sock = self._sock
            try:
                sock.sendmsg([request.data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", request.fd))])
            except (BlockingIOError, InterruptedError):
                if not self._writer_armed and self._loop is not None:
                    self._loop.add_writer(sock.fileno(), self._on_writable)
                    self._writer_armed = True
                break
            except OSError:
                self._died()
                return
            self._queue.popleft()
            if not self._pending:
                self._progress = time.monotonic()
            request.sent_to = self.starts
            self._pending[request.id] = request
        self._arm_watchdog()
        if not self._queue and not self._pending:
            self._detach()

    def _restart_for_queue(self) -> None:
        """Start a fresh zygote for the requests still waiting (after a death)."""
        loop = self._loop or self._queue_loop
        if loop is None or loop.is_closed():
            return
        try:
            self._start()
        except OSError as exc:
            self._fail_queue(zygote_start_error(exc))
            return
        self._attach(loop)

    def _fail_queue(self, exc: ZygoteError) -> None:
        queue, self._queue = self._queue, deque()
        for request in queue:
            if not request.fut.done():
                request.fut.set_exception(exc)

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None or not self._pending or self._loop is None:
            return
        self._watchdog = self._loop.call_later(REGISTRY.tunables.zygote_stall_timeout / 4, self._check_stall)

    def _check_stall(self) -> None:
        self._watchdog = None
        if not self._pending:
            return
        stall = REGISTRY.tunables.zygote_stall_timeout
        cpu = _cpu_ticks(self.proc.pid) if self.proc is not None else None
        if cpu is not None and cpu != self._zygote_cpu:
            # Slow, not stuck: a zygote starved of CPU on a loaded machine is still
            # working, and restarting it would kill every kernel it started.
            self._zygote_cpu = cpu
            self._progress = max(self._progress, time.monotonic() - stall / 2)
        if time.monotonic() - self._progress >= stall:
            self._died(f"the kernel launcher (zygote) answered nothing and used no CPU in {stall:g} s")
            return
        self._arm_watchdog()

    async def launch(self, start: dict, control: socket.socket) -> tuple[int, int]:
        """Fork a kernel from the zygote (started now if need be); returns its pid and a pidfd.

        ``start`` is the kernel's start-up message: ``cfg``, ``env``, ``cwd``.
        ``control`` is the kernel's end of its control socket; the caller closes it
        (after this returns: a request may be sent again to a fresh zygote).
        The request waits its turn in the queue without a deadline.
        """
        data = json.dumps(start).encode()
        if len(data) + ZYGOTE_REQUEST.size > MAX_ZYGOTE_REQUEST:
            raise ZygoteError(f"kernel start-up message too large ({len(data)} bytes)")
        loop = asyncio.get_running_loop()
        owner = self._loop
        if owner is not None and owner is not loop and (self._queue or self._pending) and not owner.is_closed():
            try:
                return await self._launch_through(owner, start, control)
            except _OwnerGone:
                pass  # its loop closed meanwhile: this loop serves the zygote from now on
        if not self._queue and not self._pending:
            if not self.alive():
                if self.proc is not None:
                    self._died()
                try:
                    self._start()
                except OSError as exc:
                    raise zygote_start_error(exc) from None
            self._attach(loop)
        self._queue_loop = loop
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        fut: asyncio.Future[tuple[int, int]] = loop.create_future()
        request = _Request(self._next_id, ZYGOTE_REQUEST.pack(self._next_id) + data, control.fileno(), fut)
        self._queue.append(request)
        queued = time.monotonic()
        self._pump()
        try:
            result = await fut
            REGISTRY.launch_stats.launches.append(time.monotonic() - queued)
            return result
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                _pid, pidfd = fut.result()  # answered, but we were cancelled on the way back
                kill_pidfd(pidfd)
                os.close(pidfd)
            fut.cancel()
            raise
        finally:
            if self._pending.get(request.id) is request:
                del self._pending[request.id]  # its answer, if any, finds no requester
            if not self._queue and not self._pending:
                self._detach()


    async def _launch_through(
        self, owner: asyncio.AbstractEventLoop, start: dict, control: socket.socket
    ) -> tuple[int, int]:
        """Launch on ``owner``, the loop that reads the zygote's channel, for a caller on another loop.

        Only the owner's thread touches the zygote's queue and futures; the answer
        comes back through a thread-safe future. The request holds its own copy of
        the control descriptor, so the caller closing its end (cancelled) cannot
        let a reused descriptor number reach the zygote.
        """
        answer: concurrent.futures.Future[tuple[int, int]] = concurrent.futures.Future()
        copy = socket.socket(fileno=os.dup(control.fileno()))

        def begin() -> None:
            if answer.cancelled():
                copy.close()
                return
            task = owner.create_task(self.launch(start, copy))
            task.add_done_callback(lambda done: _hand_back(done, answer, copy))
            answer.add_done_callback(lambda f: f.cancelled() and owner.call_soon_threadsafe(task.cancel))

        try:
            owner.call_soon_threadsafe(begin)
        except RuntimeError:  # the owner's loop is closed
            copy.close()
            raise _OwnerGone from None
        return await asyncio.wrap_future(answer)


class _OwnerGone(Exception):
    """The event loop that served the zygote closed before it took a request."""


def _hand_back(
    task: asyncio.Task[tuple[int, int]], answer: concurrent.futures.Future[tuple[int, int]], copy: socket.socket
) -> None:
    """On the owner's loop: pass a launch's outcome to the caller on the other loop."""
    copy.close()
    if not task.cancelled() and task.exception() is None:
        try:
            answer.set_result(task.result())
        except concurrent.futures.InvalidStateError:  # the caller gave up: the kernel is not wanted
            _pid, pidfd = task.result()
            kill_pidfd(pidfd)
            os.close(pidfd)
        return
    exc = ZygoteDied("the event loop serving the kernel launcher stopped") if task.cancelled() else task.exception()
    try:
        answer.set_exception(exc)
    except concurrent.futures.InvalidStateError:
        pass


class ZygoteLauncher:
    """The launch path that ships: kernels forked by the harness's zygote."""

    name = "zygote"

    async def launch(self, start: dict[str, Any], control: socket.socket) -> LaunchedKernel:
        pid, pidfd = await REGISTRY.zygote.launch(start, control)
        return LaunchedKernel(pid, pidfd)


ZYGOTE_LAUNCHER = ZygoteLauncher()


def _root_cfg() -> dict[str, Any]:
    from .control import zygote_root_cfg  # control probes what the machine allows

    return zygote_root_cfg()
