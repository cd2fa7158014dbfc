"""A kernel's control channel: its process's life, from start to kill.

``KernelControl`` starts a sample's kernel process (forked by the zygote, see
``launcher.py``) with its identity and limits, reads its control socket (step
processes ready, step processes ended), hands out the current step process,
notices a dead kernel and starts a fresh one, and kills it all. Every wait has
a deadline; nothing here blocks the event loop in the common path.

What runs on a step process's own channel is ``step_channel.py``'s; ``Kernel``
(``kernel.py``) composes the two.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ValidationError

from opaque_knapsack.records import RuntimeSemantics

from . import _confine, _fs
from ._wire import RETIRED_PREFIX, WORKDIR_NAME
from .config import RuntimeConfig
from .launcher import (
    KERNEL_SCRIPT,
    KernelLauncher,
    ZygoteDied,
    ZygoteError,
    await_pidfd,
    kernel_env,
    kill_group,
    kill_pidfd,
    pidfd_exited,
)
from .protocol import ExitMessage, ExitStatus, ReadyMessage, control_message_adapter
from .registry import REGISTRY
from .step_channel import StepProcess

logger = logging.getLogger(__name__)
RETIRED_BATCH = 16
"""Retired stateless working directories deleted together, and fresh ones made together
(see ``KernelControl.renew_workdir``)."""


START_TIMEOUT = 60.0
"""Seconds a kernel may take to hand over a step process. A kernel that dies is noticed at once
(its control socket closes); this bounds only a stuck one, so it is generous: on a loaded machine
(a test suite beside other work, a 1,000-sample eval) a healthy start can take many seconds, and a
start refused twice errors the sample."""
EXIT_TIMEOUT = 3.0
_UID_BASE = 0x40000000
WORKDIR_PREFIX = "ok-kernel-"  # + the harness pid: `inspect sandbox cleanup` finds a dead harness's


class KernelError(RuntimeError):
    """The kernel could not be started or confined."""


@dataclass(frozen=True)
class Protection:
    """Which isolation layers this machine lets the runtime apply."""

    uid_drop: bool
    """Kernels run as a private unprivileged uid (needs root)."""
    landlock_abi: int
    """Landlock ABI used to confine the filesystem (0: none)."""
    seccomp: bool
    """The seccomp-BPF syscall filter is installed (x86_64 Linux)."""
    namespaces: bool = False
    """Each kernel has its own IPC and mount namespaces, and a root that shows only the
    Python install, system libraries and its working directory (root, or an
    unprivileged user where the machine allows user namespaces)."""

    def missing(self) -> list[str]:
        gaps = []
        if not self.uid_drop:
            gaps.append("uid drop (not running as root)")
        if self.landlock_abi <= 0:
            gaps.append("Landlock")
        if not self.seccomp:
            gaps.append("seccomp")
        if not self.namespaces:
            gaps.append("namespaces (root, or unprivileged user namespaces)")
        return gaps


@cache
def probe_protection() -> Protection:
    uid_drop = hasattr(os, "geteuid") and os.geteuid() == 0
    return Protection(
        uid_drop=uid_drop,
        landlock_abi=_confine.landlock_abi(),
        seccomp=_confine.seccomp_available(),
        namespaces=_probe_namespaces(user=not uid_drop),
    )


def _probe_namespaces(user: bool) -> bool:
    """Whether a kernel can enter its private root here: tried once, in a throwaway process."""
    if not sys.platform.startswith("linux"):
        return False
    container = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-probe-", dir=temp_dir())
    try:
        os.mkdir(os.path.join(container, WORKDIR_NAME))
        cfg = {**shared_root_cfg(user), "container": container, "kernel_renews_workdir": False}
        done = subprocess.run(
            [sys.executable, "-S", "-s", KERNEL_SCRIPT, "probe", json.dumps(cfg)],
            capture_output=True, timeout=30, env=kernel_env("/"), cwd="/", check=False,
        )
        return bool(json.loads(done.stdout or b"{}").get("private_root"))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False
    finally:
        _fs.remove_tree(container)


def zygote_root_cfg() -> dict[str, Any]:
    """The zygote builds the private root its kernels share, where the machine allows it."""
    protection = probe_protection()
    return shared_root_cfg(user=not protection.uid_drop) if protection.namespaces else {}


def _allocate_uid() -> int:
    # Private per kernel: its processes can only signal each other, and
    # RLIMIT_NPROC counts only them. Derived from the harness pid so two
    # harnesses on one machine do not collide.
    base = _UID_BASE + ((os.getpid() & 0xFFFFF) << 10)
    for _ in range(1024):
        uid = base + (next(REGISTRY.uid_sequence) & 0x3FF)
        if uid not in REGISTRY.uids_in_use:
            REGISTRY.uids_in_use.add(uid)
            return uid
    raise KernelError("no free kernel uid")


def existing_paths(paths: list[str]) -> list[str]:
    """The paths that exist, each once, in order (Landlock rules name only existing paths)."""
    seen: list[str] = []
    for p in paths:
        if p and os.path.exists(p) and p not in seen:
            seen.append(p)
    return seen


def temp_dir() -> str:
    """Where kernels' containers are made: the one host directory a private root shows."""
    return _real_path(tempfile.gettempdir())


@cache
def _real_path(path: str) -> str:
    return os.path.realpath(path)  # asked at every kernel start, on the event loop


def shared_root_cfg(user: bool) -> dict[str, Any]:
    """What the zygote builds its private root from (see ``_kernel._enter_shared_root``)."""
    return {"private_root": True, "user_namespace": user, "temp_dir": temp_dir(), "read_only_paths": read_only_paths(True)}


def read_only_paths(site_packages: bool) -> list[str]:
    """What a kernel may read: the Python install, system libraries, /dev/urandom."""
    return list(_read_only_paths(site_packages))


@cache
def _read_only_paths(site_packages: bool) -> tuple[str, ...]:
    return tuple(existing_paths(python_paths(site_packages) + ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/dev/urandom"]))


@cache
def python_paths(site_packages: bool) -> list[str]:
    """The Python install a kernel may read: the standard library, and site-packages if allowed."""
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    paths = [stdlib, os.path.join(stdlib, "lib-dynload")]
    if site_packages:
        paths += [os.path.realpath(sysconfig.get_path(k)) for k in ("purelib", "platlib")]
    return existing_paths(paths)


Dying = list[tuple[int, "subprocess.Popen[bytes] | None"]]
"""Killed processes not yet seen gone: their pidfds (and the Popen of a harness child to reap)."""


def bury(entries: Dying) -> None:
    """Close the pidfds of exited kernels (and reap those that are the harness's children)."""
    for pidfd, proc in entries:
        os.close(pidfd)
        if proc is not None:
            proc.poll()
    entries.clear()


class KernelControl:
    """The control side of one sample's kernel: start, liveness, step processes, kill.

    ``on_start``/``on_kill`` tell the owner when a kernel process is about to be
    started and when it was killed (the registry of live kernels).
    """

    def __init__(
        self,
        semantics: RuntimeSemantics,
        config: RuntimeConfig,
        workdir: str | None,
        launcher: KernelLauncher,
        on_start: Callable[[], None],
        on_kill: Callable[[], None],
    ) -> None:
        self.semantics = semantics
        self.config = config
        self.launcher = launcher
        self.protection = probe_protection()
        if config.require_isolation and self.protection.missing():
            raise KernelError("isolation required but unavailable: " + ", ".join(self.protection.missing()))
        if workdir is not None and self.protection.namespaces and not os.path.realpath(workdir).startswith(temp_dir() + os.sep):
            raise KernelError(f"a kernel's container must be in the temp directory {temp_dir()} (its private root shows no other): {workdir}")
        self.uid: int | None = _allocate_uid() if self.protection.uid_drop else None
        self._own_container = workdir is None
        self.container = os.path.realpath(workdir or tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-", dir=temp_dir()))
        """Holds the working directory; the harness's, never the kernel's (root-owned, or
        out of the kernel's sight), so nothing the kernel does to it can carry over."""
        os.chmod(self.container, 0o711)
        made = os.stat(self.container)
        self._container_times = (made.st_atime_ns, made.st_mtime_ns)
        self.workdir = os.path.join(self.container, WORKDIR_NAME)
        self._make_workdir()
        self.fresh_workdir_per_step = not semantics.keeps_files
        """Every stateless step gets a working directory nothing earlier touched."""
        self.kernel_renews_workdir = (
            self.fresh_workdir_per_step and self.protection.namespaces and not self.protection.uid_drop
        )
        """In a user namespace the kernel owns the container, hidden from its steps, and
        makes each fresh directory itself; elsewhere the harness does (``renew_workdir``)."""
        self._on_start = on_start
        self._on_kill = on_kill
        self.pid: int | None = None
        self._pidfd: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None  # a child of the harness (a benchmark's launcher)
        self.dying: Dying = []  # killed, not yet awaited
        self.launched_by: str | None = None
        """The name of the launcher that started the kernel process (``"zygote"``)."""
        self._ctl: socket.socket | None = None
        self._poller = select.poll()
        self._polled: tuple[int, int] = (-1, -1)
        """The descriptors ``_poller`` watches: the control socket and the current step process's pidfd."""
        self.child: StepProcess | None = None
        """The current step process."""
        self._ready: deque[StepProcess] = deque()
        self._exits: dict[int, ExitStatus] = {}
        self.state_lost = False
        """A persistent interpreter died (with state) and no result has said so yet."""
        self.steps_since_restart = 0
        """Steps whose state the current interpreter may hold (a restart is announced once)."""
        self._deletion: asyncio.Future[None] | None = None
        """The last batch of retired working directories' deletion, while it runs (see ``renew_workdir``)."""
        self._retired_dirs: list[str] = []
        """Retired working directories not yet being deleted."""
        self._fresh_dirs: list[str] = []
        """Working directories made ahead, under names no step can guess (see ``renew_workdir``)."""
        self.makes_ahead = self.fresh_workdir_per_step and not self.kernel_renews_workdir and self.protection.uid_drop
        """Fresh directories are made ahead where the container is root's and closed to listing."""
        self.retired: StepProcess | None = None
        """A stateless step's killed process, not yet seen dead (see ``settle_retired``)."""

    # ---- the kernel process ---------------------------------------------------

    def confinement_cfg(self) -> dict[str, Any]:
        """Identity, limits and confinement layers for a process of this kernel (kernel or command)."""
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
            "import_paths": list(python_paths(self.config.allow_site_packages)),
            "landlock": self.protection.landlock_abi > 0,
            "seccomp": self.protection.seccomp,
            "max_message_bytes": self.config.max_message_bytes,
        }

    def _start_message(self) -> dict[str, Any]:
        cfg = self.confinement_cfg()
        cfg.update(
            persists_state=self.semantics.persists_state,
            prebound_modules=list(self.config.prebound_modules),
            echo_last_expression=self.config.echo_last_expression,
            read_only_paths=read_only_paths(self.config.allow_site_packages),
            # Landlock's rule is on the container, so a fresh working directory in it is covered.
            read_write_paths=[self.container, "/dev/null"],
            container=self.container,
            temp_dir=temp_dir(),
            private_root=self.protection.namespaces,
            user_namespace=not self.protection.uid_drop,
            fresh_workdir_per_step=self.fresh_workdir_per_step,
            kernel_renews_workdir=self.kernel_renews_workdir,
        )
        return {"cfg": cfg, "env": kernel_env(self.workdir), "cwd": self.workdir}

    def _make_workdir(self, path: str | None = None) -> None:
        path = path or self.workdir
        os.mkdir(path, 0o700)
        if self.uid is not None:
            os.chown(path, self.uid, self.uid)
        os.chmod(path, 0o700)

    async def renew_workdir(self, pid: int, by_kernel: bool) -> None:
        """A fresh working directory for the next stateless step; the old one goes.

        Run once the previous step's process is gone. ``by_kernel``: the kernel made
        the new one itself before it reported that process's end, so only the old
        one is left to delete. Otherwise, where the container is root's and closed
        to listing (``makes_ahead``), a directory made ahead under a random name
        swaps places with the old one in one atomic rename; else the old one is
        renamed away and a new one made, on the loop. Directories are made and
        deleted in a worker thread, ``RETIRED_BATCH`` at a time (a mkdir or an
        rmdir costs a sizeable part of a trivial step on a journalled file
        system; one thread per directory cost a stateless step 20-30 %); a batch
        waits for the one before it, so at most two batches are ever left
        undeleted.
        """
        if by_kernel:
            retired = os.path.join(self.container, f"{RETIRED_PREFIX}{pid}")  # named by the kernel
        elif self._swap_in_fresh():
            retired = self._fresh_dirs.pop()  # its name now holds the old directory
        else:
            retired = os.path.join(self.container, f"{RETIRED_PREFIX}{secrets.token_hex(8)}")
            try:
                os.rename(self.workdir, retired)
            except FileNotFoundError:
                pass
            self._make_workdir()
        if not (self.protection.namespaces or self.protection.uid_drop):
            await self._scrub_container()  # the old directory goes with the rest, now
            return
        self._retired_dirs.append(retired)
        if len(self._retired_dirs) >= RETIRED_BATCH or (self.makes_ahead and len(self._fresh_dirs) < RETIRED_BATCH // 2):
            await self._delete_retired()

    def _swap_in_fresh(self) -> bool:
        """Swap the working directory with one made ahead; False where none is ready or it cannot be."""
        if not self._fresh_dirs:
            return False
        try:
            return _fs.exchange(self._fresh_dirs[-1], self.workdir)
        except FileNotFoundError:  # no working directory (its kernel was killed renewing it)
            return False

    async def _delete_retired(self, wait: bool = False) -> None:
        """Start deleting the retired directories, and making fresh ones ahead (after the last
        batch is done); ``wait``: to the end."""
        if self._deletion is not None:
            if not wait and not self._deletion.done() and len(self._retired_dirs) < 2 * RETIRED_BATCH:
                return  # the running batch tops the fresh ones up; this one waits for the next
            await self._deletion
        batch, self._retired_dirs = self._retired_dirs, []
        make = [] if wait or not self.makes_ahead else [
            os.path.join(self.container, f"{RETIRED_PREFIX}{secrets.token_hex(16)}")
            for _ in range(RETIRED_BATCH - len(self._fresh_dirs))
        ]
        self._deletion = asyncio.ensure_future(self._renew_batch(batch, make)) if batch or make else None
        if wait and self._deletion is not None:
            await self._deletion
            self._deletion = None

    async def _renew_batch(self, retired: list[str], fresh: list[str]) -> None:
        """Delete ``retired`` and make ``fresh`` in one worker thread; what was made joins the pool."""
        made = await asyncio.to_thread(self._renew_dirs, retired, fresh)
        self._fresh_dirs.extend(made)

    def _renew_dirs(self, retired: list[str], fresh: list[str]) -> list[str]:
        _remove_trees(retired)
        made = []
        for path in fresh:
            try:
                self._make_workdir(path)
            except OSError as exc:
                logger.warning("could not make a working directory ahead %s: %s", path, exc)
                break
            made.append(path)
        return made

    async def _scrub_container(self) -> None:
        """Unprivileged without namespaces the kernel's uid owns its container and can reach
        it: what a step left there (entries, mode, extended attributes, times) is wiped
        before the next step, the one place besides the fresh working directory it could write."""
        try:
            await asyncio.to_thread(_fs.scrub, self.container, keep=WORKDIR_NAME, mode=0o711, times_ns=self._container_times)
        except OSError as exc:
            logger.warning("could not scrub the kernel's container %s: %s", self.container, exc)

    async def spawn(self) -> None:
        self._on_start()  # before any await: a task's cleanup must not stop the zygote under us
        self._bury_exited()
        if os.path.isdir(self.container) and not os.path.isdir(self.workdir):  # its kernel was killed renewing it
            self._make_workdir()
        start = self._start_message()
        for attempt in range(2):
            ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                launched = await self.launcher.launch(start, theirs)
                self.pid, self._pidfd, self._popen = launched.pid, launched.pidfd, launched.process
                self.launched_by = self.launcher.name
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

    @property
    def started(self) -> bool:
        return self._pidfd is not None

    def kill(self) -> None:
        """Kill the kernel and its step processes now (synchronous, never waits; safe to repeat)."""
        for child in list(self._ready) + [c for c in (self.child, self.retired) if c is not None]:
            child.kill()
            child.close_channel()
            if child.pidfd is not None:  # close() waits for it to be gone, as for the kernel process
                self.dying.append((child.pidfd, None))
                child.pidfd = None
        self._ready.clear()
        self.child = self.retired = None
        if self._pidfd is not None:
            # Through the pidfd: a kernel forked by the zygote is not our child, so its
            # pid could be reused once it is gone. Its step processes die with it
            # (parent-death signal); its group is killed only while it still exists.
            if self.pid is not None and not pidfd_exited(self._pidfd):
                kill_group(self.pid)
            kill_pidfd(self._pidfd)
            self.dying.append((self._pidfd, self._popen))
            self._pidfd = self.pid = self._popen = None
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        self._on_kill()

    def _bury_exited(self) -> None:
        exited = [entry for entry in self.dying if pidfd_exited(entry[0])]
        if exited:
            self.dying = [entry for entry in self.dying if entry not in exited]
            bury(exited)

    async def close(self) -> None:
        """Kill everything, wait (bounded) until it is gone, give back the uid and the working directory."""
        self.kill()
        for pidfd, _proc in self.dying:
            await await_pidfd(pidfd, EXIT_TIMEOUT)
        bury(self.dying)
        if self._deletion is not None:
            await self._deletion  # it may add directories made ahead, which go too
            self._deletion = None
        self._retired_dirs += self._fresh_dirs
        self._fresh_dirs = []
        await self._delete_retired(wait=True)
        if self.uid is not None:
            REGISTRY.uids_in_use.discard(self.uid)
        if self._own_container:
            await remove_workdir(self.container)
        else:  # the caller's directory: only the working directory the runtime made in it goes
            await remove_workdir(self.workdir)

    def process_ids(self) -> list[int]:
        """Pids of the kernel process and its known step processes."""
        pids = [self.pid] if self.pid is not None else []
        pids += [c.pid for c in self._ready] + ([self.child.pid] if self.child else [])
        return pids

    # ---- the control socket -----------------------------------------------------

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
            _close_all(fds)
            return False
        msg = self._take_control(data, fds)
        if msg is not None:
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
                _close_all(fds)
                return False
            msg = self._take_control(data, fds)
            if msg is not None and self.child is not None and self.child.pid == msg.pid:
                self.state_lost = self.state_lost or self.child.steps > 0
                self.child.close()
                self.child = None

    def _take_control(self, data: bytes, fds: list[int]) -> ExitMessage | None:
        """One control message: a ready step process is adopted, garbage dropped, an exit recorded and returned."""
        try:
            msg = control_message_adapter.validate_json(data)
        except ValidationError:
            _close_all(fds)
            return None
        if isinstance(msg, ReadyMessage):
            self._adopt(msg, fds)
            return None
        _close_all(fds)
        self._exits[msg.pid] = msg.status
        if len(self._exits) > 64:  # statuses nobody waits for: keep the newest
            self._exits.pop(next(iter(self._exits)))
        return msg

    def _adopt(self, msg: ReadyMessage, fds: list[int]) -> None:
        """A new step process: its channel end and (from K) a pidfd for it."""
        if len(fds) not in (1, 2):
            _close_all(fds)
            return
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(False)
        self._ready.append(StepProcess(pid=msg.pid, sock=sock, pidfd=fds[1] if len(fds) == 2 else None))

    # ---- step processes -----------------------------------------------------------

    async def acquire_child(self) -> bool:
        """Make sure a live step process is current; True if state was lost on the way."""
        polled, (waiting, ended) = self.child, self._look()
        if self._ctl is None or (waiting and not self._drain_control()):
            self.state_lost = self.state_lost or (self.child is not None and self.child.steps > 0)
            self.kill()
            await self.spawn()
        if ended and self.child is not None and self.child is polled:
            # Ended between steps (killed from outside), perhaps before its kernel said so.
            self.state_lost = self.state_lost or self.child.steps > 0
            gone = self.retire_child(kill=False)
            assert gone is not None
            gone.close()
        lost, self.state_lost = self.state_lost, False
        if self.child is not None:
            return lost
        for attempt in range(2):
            if await self._await_ready():
                break
            # No spare step process in time: the kernel is stuck; a fresh one gets one more try.
            self.state_lost = False
            lost = lost or self._child_had_state()
            self.kill()
            if attempt:
                raise KernelError(
                    "the kernel process did not start, or gave no step process in time (twice in a row; "
                    "is the Python install readable and the working directory there?)"
                )
            await self.spawn()
        self.child = self._ready.popleft()
        return lost

    def _look(self) -> tuple[bool, bool]:
        """One poll, without waiting: (a control message, or the kernel's end, is waiting;
        the current step process has ended). Nothing to read, the usual case, costs one
        system call for both, and no failed read."""
        if self._ctl is None:
            return False, False
        child = self.child
        fds = (self._ctl.fileno(), child.pidfd if child is not None and child.pidfd is not None else -1)
        if fds != self._polled:
            for fd in self._polled:
                if fd >= 0:
                    self._poller.unregister(fd)
            for fd in fds:
                if fd >= 0:
                    self._poller.register(fd, select.POLLIN)
            self._polled = fds
        events = self._poller.poll(0)
        if not events:
            return False, False
        ready = [fd for fd, _ in events]
        return fds[0] in ready, fds[1] >= 0 and fds[1] in ready

    def _child_had_state(self) -> bool:
        # Steps since the last restart the runtime announced: a restart is announced once.
        return self.semantics.persists_state and self.steps_since_restart > 0

    async def _await_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or not await self._read_control(remaining):
                    return False
            except TimeoutError:
                return False
        return True

    async def await_exit(self, pid: int) -> ExitStatus | None:
        """How a step process ended, as its kernel reports it (None: no report in time)."""
        deadline = time.monotonic() + EXIT_TIMEOUT
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

    # ---- one step's bookkeeping: restarts, lost state, retired step processes ---------

    async def begin_step(self) -> tuple[StepProcess, bool]:
        """The step process the next step runs in, and whether state was lost getting it.

        The previous stateless step's process is settled first (its files gone).
        A kernel that cannot give one raises (``KernelError``, ``TimeoutError``,
        ``OSError``); that failed step is the runtime's one announcement of the loss.
        """
        if self.retired is not None:
            await self.settle_retired()
        try:
            lost = await self.acquire_child()
        except (KernelError, TimeoutError, OSError):
            self.state_lost = False
            self.steps_since_restart = 0
            raise
        assert self.child is not None
        return self.child, lost

    def end_step(self, child: StepProcess, lost: bool) -> None:
        """A step ran to its result in ``child`` (``lost``: as ``begin_step`` said)."""
        child.steps += 1
        self.steps_since_restart = 1 if lost else self.steps_since_restart + 1
        if self.semantics.persists_state:
            return
        # Whatever the step's code did to its process (patched the kernel, forged
        # its result, cleared handlers), the process ends with its step.
        self.retire_child(kill=True)
        if self.semantics.keeps_files:
            child.close()
        else:
            self.retired = child  # its files go before the next step runs (see settle_retired)

    def abandon_step(self, child: StepProcess) -> None:
        """The step was cancelled (or the harness failed) mid-step: the channel is out of
        step, so its process goes; a persistent runtime reports the loss at the next step."""
        self.retire_child(kill=True)
        child.close()
        self.state_lost = self.semantics.persists_state

    async def fault_step(self, child: StepProcess) -> ExitStatus | None:
        """The step faulted (timed out, crashed, broke the protocol): ``bury_faulted``; the
        result says so, so the next step starts counting afresh."""
        status = await self.bury_faulted(child)
        self.steps_since_restart = 0
        return status

    def retire_child(self, kill: bool) -> StepProcess | None:
        """The current step process is done with (killed first if ``kill``); the next step gets another."""
        child, self.child = self.child, None
        if child is not None:
            if kill:
                child.kill()
            child.close_channel()
        return child

    async def settle_retired(self) -> None:
        """Before a stateless step: the previous step's (killed) process is gone, its files too.

        Done here rather than when that step ended, so a step's result does not
        wait for its process's teardown; the next step cannot start before.
        """
        child, self.retired = self.retired, None
        if child is None:
            return
        if child.pidfd is not None:
            if not pidfd_exited(child.pidfd):
                await await_pidfd(child.pidfd, EXIT_TIMEOUT)
            child.close()
        await self._renew_after(child.pid, await self.await_exit(child.pid) if self.kernel_renews_workdir else None)

    async def bury_faulted(self, child: StepProcess) -> ExitStatus | None:
        """A step process that faulted: killed, its end awaited (bounded); a stateless one's files go."""
        self.retire_child(kill=True)
        status = await self.await_exit(child.pid)
        if child.pidfd is not None and not pidfd_exited(child.pidfd):
            await await_pidfd(child.pidfd, EXIT_TIMEOUT)
        child.close()
        if self.fresh_workdir_per_step:
            await self._renew_after(child.pid, status)
        return status

    async def _renew_after(self, pid: int, status: ExitStatus | None) -> None:
        """Renew the working directory after the step process ``pid`` (its kernel's report: ``status``)."""
        by_kernel = self.kernel_renews_workdir and status is not None
        if self.kernel_renews_workdir and not by_kernel:
            self.kill()  # no report, so perhaps no fresh directory: a fresh kernel (a stateless one holds no state)
        await self.renew_workdir(pid, by_kernel)


async def remove_workdir(path: str) -> None:
    """Delete a kernel's working directory off the event loop; a failure is logged, never raised."""
    await remove_workdirs([path])


async def remove_workdirs(paths: list[str]) -> None:
    """Delete directories in one worker thread; each failure is logged, never raised."""
    await asyncio.to_thread(_remove_trees, paths)


def _remove_trees(paths: list[str]) -> None:
    for path in paths:
        try:
            _fs.remove_tree(path)
        except (OSError, RecursionError) as exc:
            logger.warning("could not remove the kernel working directory %s: %s", path, exc)


def describe_status(status: ExitStatus) -> str:
    if status.signal is not None:
        try:
            name = signal.Signals(status.signal).name
        except ValueError:
            name = str(status.signal)
        return f"killed by {name}"
    return f"exit status {status.code}"


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
