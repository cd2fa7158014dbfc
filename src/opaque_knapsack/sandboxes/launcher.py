"""Starting kernel processes: the zygote (fork server) and the direct spawn.

A kernel used to be a fresh ``python -S -s _kernel.py kernel <cfg>`` per sample:
an interpreter start plus imports (tens of ms of CPU) and a ``fork_exec`` on the
event loop thread (12-19 ms during which no other sample runs). Instead, one
zygote per harness process is started lazily, exactly like a kernel used to be
(``python -S -s _kernel.py zygote``, scrubbed environment, its own process
group) and before it has seen anything sample-specific; it preloads what a
kernel needs and from then on only forks. A kernel start is one request on the
zygote's channel (SOCK_SEQPACKET): the kernel's start-up message (cfg,
environment, working directory) plus the kernel's end of its control socket
(SCM_RIGHTS); the reply is the kernel's pid plus a pidfd for it. The fork then
applies exactly the per-kernel setup a spawned kernel does (see
``_kernel.zygote_main``).

Nothing here blocks the event loop in the common path: the channel is
non-blocking and read through the loop's selector; kernels are killed through
their pidfd and their end is awaited through it too. Starting the zygote itself
(one ``fork_exec``, once per harness process) is the exception.

If the zygote dies, every request in flight fails with ``ZygoteDied`` (the
caller retries once with a fresh zygote) and the next request starts a new one.
``launch_direct`` is the old path, kept for comparison (``Kernel(launcher=
"direct")``, the start-up benchmark) and for the rare call from a second event
loop while the first still has requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

KERNEL_SCRIPT = str(Path(__file__).with_name("_kernel.py").resolve())

_REQUEST = struct.Struct(">I")  # request id; the start-up message follows (see _kernel.zygote_main)
_REPLY = struct.Struct(">Ii")  # request id, pid or -errno
_MAX_REQUEST = 1 << 16  # the zygote's request buffer
_ANSWER_TIMEOUT = 15.0


class ZygoteError(RuntimeError):
    """The zygote could not start a kernel."""


class ZygoteDied(ZygoteError):
    """The zygote is gone (or was stopped) before it answered."""


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


def kill_pidfd(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
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


def launch_direct(start: dict, control: socket.socket) -> tuple[int, int, subprocess.Popen[bytes]]:
    """The old path: a fresh interpreter per kernel (blocks the calling thread in fork_exec)."""
    cfg = dict(start["cfg"], control_fd=control.fileno())
    proc = subprocess.Popen(
        [sys.executable, "-S", "-s", KERNEL_SCRIPT, "kernel", json.dumps(cfg)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=start["cwd"],
        env=start["env"],
        pass_fds=(control.fileno(),),
        process_group=0,
    )
    return proc.pid, os.pidfd_open(proc.pid), proc


class Zygote:
    """The harness's handle on its zygote; one per harness process (``ZYGOTE``)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writable: asyncio.Future[None] | None = None  # shared by every request waiting to be sent
        self._exited: list[subprocess.Popen[bytes]] = []

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def usable_from(self, loop: asyncio.AbstractEventLoop) -> bool:
        """False only while another event loop has requests in flight."""
        return not self._pending or self._loop is loop

    # ---- lifecycle ---------------------------------------------------------------

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            cfg = {"harness_pid": os.getpid(), "channel_fd": theirs.fileno()}
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
        """Kill the zygote now (its kernels die with it); fail requests in flight. Returns it, unreaped."""
        self._detach()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ZygoteDied(reason))
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

    def _died(self) -> None:
        proc = self.proc
        status = proc.poll() if proc is not None else None
        if status is None:
            how = "it closed its channel"
        elif status < 0:
            how = f"killed by {signal.Signals(-status).name}" if -status in signal.valid_signals() else f"signal {-status}"
        else:
            how = f"exit status {status}"
        self.stop(f"the kernel launcher (zygote, pid {proc.pid if proc else '?'}) died: {how}")

    # ---- requests ------------------------------------------------------------------

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
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(ZygoteDied("the zygote was stopped"))
        self._writable = None
        self._loop = None

    def _wait_writable(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> asyncio.Future[None]:
        # The channel's send buffer (net.core.wmem_default) holds some 60-100
        # requests; every sender beyond them waits here. add_writer keeps one
        # callback per fd, so all of them share one future.
        if self._writable is None:
            fut: asyncio.Future[None] = loop.create_future()

            def ready() -> None:
                loop.remove_writer(sock.fileno())
                if self._writable is fut:
                    self._writable = None
                if not fut.done():
                    fut.set_result(None)

            self._writable = fut
            loop.add_writer(sock.fileno(), ready)
        return self._writable

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                data, ancdata, _flags, _addr = self._sock.recvmsg(_REPLY.size, socket.CMSG_SPACE(4 * 4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, ancdata = b"", []
            fds = _fds(ancdata)
            if len(data) != _REPLY.size:
                for fd in fds:
                    os.close(fd)
                self._died()
                return
            request_id, pid = _REPLY.unpack(data)
            fut = self._pending.get(request_id)
            if fut is None or fut.done():  # its requester gave up: the kernel is not wanted
                for fd in fds:
                    kill_pidfd(fd)
                    os.close(fd)
            elif pid <= 0 or len(fds) != 1:
                for fd in fds:
                    kill_pidfd(fd)
                    os.close(fd)
                reason = os.strerror(-pid) if pid < 0 else "it exited at once"
                fut.set_exception(ZygoteError(f"the kernel launcher could not start a kernel: {reason}"))
            else:
                fut.set_result((pid, fds[0]))

    async def _send(self, loop: asyncio.AbstractEventLoop, data: bytes, fd: int) -> None:
        ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))]
        while True:
            sock = self._sock
            if sock is None:
                raise ZygoteDied("the zygote was stopped")
            try:
                sock.sendmsg([data], ancdata)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._died()
                raise ZygoteDied(f"the kernel launcher (zygote) is gone ({exc.strerror})") from None
            try:
                async with asyncio.timeout(_ANSWER_TIMEOUT):
                    await asyncio.shield(self._wait_writable(loop, sock))
            except TimeoutError:
                self.stop("the kernel launcher (zygote) stopped reading requests")
                raise ZygoteDied("the kernel launcher (zygote) stopped reading requests") from None

    async def launch(self, start: dict, control: socket.socket) -> tuple[int, int]:
        """Fork a kernel from the zygote (started now if need be); returns its pid and a pidfd.

        ``start`` is the kernel's start-up message: ``cfg``, ``env``, ``cwd``.
        ``control`` is the kernel's end of its control socket; the caller closes it.
        """
        data = json.dumps(start).encode()
        if len(data) + _REQUEST.size > _MAX_REQUEST:
            raise ZygoteError(f"kernel start-up message too large ({len(data)} bytes)")
        loop = asyncio.get_running_loop()
        if not self.alive():
            if self.proc is not None:
                self._died()
            self._start()
        if not self._pending:
            self._attach(loop)
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        request_id = self._next_id
        fut: asyncio.Future[tuple[int, int]] = loop.create_future()
        self._pending[request_id] = fut
        try:
            await self._send(loop, _REQUEST.pack(request_id) + data, control.fileno())
            try:
                async with asyncio.timeout(_ANSWER_TIMEOUT):
                    return await fut
            except TimeoutError:
                self.stop(f"the kernel launcher (zygote) did not answer in {_ANSWER_TIMEOUT:g} s")
                raise ZygoteDied(f"the kernel launcher (zygote) did not answer in {_ANSWER_TIMEOUT:g} s") from None
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                _pid, pidfd = fut.result()  # answered, but we were cancelled on the way back
                kill_pidfd(pidfd)
                os.close(pidfd)
            raise
        finally:
            if self._pending.get(request_id) is fut:
                del self._pending[request_id]
            if not self._pending:
                self._detach()


ZYGOTE = Zygote()


def _forget_in_child() -> None:
    # A fork of the harness (a fork-started worker) must not use or kill the
    # parent's zygote: it starts its own if it needs one.
    if ZYGOTE._sock is not None:
        ZYGOTE._sock.close()
    ZYGOTE.__init__()  # type: ignore[misc]


os.register_at_fork(after_in_child=_forget_in_child)
