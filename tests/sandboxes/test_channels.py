"""Issue 18, items 1-4 and 9: nothing carries data between samples, or from one stateless step to the next.

Each class of thing processes can share is attacked through ``run_code`` the way
an agent's block would: System V IPC and POSIX message queues, the working
directory's metadata and its container, process attributes (of the kernel
process, the spare step process, the harness), socket names, and ``stat()``
outside the working directory. Two layers close most of them: the seccomp
filter (an ordinary ``PermissionError`` for the agent's code) and each
kernel's own namespaces with its private root. Where a test is parametrized
over ``layers``, it also runs with one layer switched off (as on a machine that
lacks it), to show the other still holds.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import resource
import shutil
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.sandboxes import (
    Kernel,
    Protection,
    StatelessPythonSandbox,
    control,
    kill_all_kernels,
    probe_protection,
)
from opaque_knapsack.sandboxes._wire import RETIRED_PREFIX
from opaque_knapsack.sandboxes.registry import REGISTRY

RUNTIME_NAMES = ["persistent", "stateless"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

_IPC_CREAT = 0o1000
_IPC_RMID = 0


@pytest.fixture
async def layers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Protection]:
    """The protection kernels made in this test get: all this machine has, or one layer less.

    The zygote is restarted around a change: it builds the private root its kernels share."""
    real = probe_protection()
    off = getattr(request, "param", "all")
    if off != "all":
        await REGISTRY.zygote.stop_and_wait()
        layer = {"no-namespaces": "namespaces", "no-seccomp": "seccomp"}[off]
        monkeypatch.setattr(control, "probe_protection", lambda: dataclasses.replace(real, **{layer: False}))
    yield control.probe_protection()
    if off != "all":
        await REGISTRY.zygote.stop_and_wait()


async def _out(kernel: Kernel, code: str) -> str:
    result = await kernel.run_code(code)
    assert result.error is None, result.error
    return result.stdout


def _lines(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


# ---- 1. System V IPC and POSIX message queues -------------------------------------------

_SYSCALL = """
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(*args):
    result = libc.syscall(*args)
    return result if result >= 0 else errno.errorcode[ctypes.get_errno()]
buf = ctypes.create_string_buffer(512)
"""

_IPC_ATTEMPTS = _SYSCALL + """
print(json.dumps({
    'shmget': call(29, 0, 1 << 20, 0o1600),            # IPC_PRIVATE, IPC_CREAT | 0600
    'semget': call(64, 0, 1, 0o1600),
    'msgget': call(68, 0, 0o1600),
    'mq_open': call(240, b'ok-note', 0o102, 0o600, None),  # O_CREAT | O_RDWR
    'shm_stat_any': call(31, 0, 15, buf),               # enumerate without knowing keys
    'sem_stat_any': call(66, 0, 0, 20, buf),
    'msg_stat_any': call(71, 0, 13, buf),
    'shmget_host': call(29, HOST_KEY, 0, 0),            # a 0666 segment the harness made
    'kernel_log': call(103, 3, buf, 512),              # SYSLOG_ACTION_READ_ALL: a crash's line is a note
}))
"""


@pytest.fixture
def host_segment() -> Iterator[int]:
    """A world-readable and -writable segment in the host's IPC namespace; its key."""
    key = 0x4F4B0000 + (os.getpid() & 0xFFFF)
    shmid = _libc.shmget(key, 4096, _IPC_CREAT | 0o666)
    assert shmid >= 0, os.strerror(ctypes.get_errno())
    yield key
    _libc.shmctl(shmid, _IPC_RMID, None)


@pytest.mark.parametrize("layers", ["all", "no-namespaces"], indirect=True)
@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_ipc_and_the_kernel_log_are_denied(make_kernel, layers: Protection, semantics: str, host_segment: int) -> None:
    kernel = await make_kernel(semantics)
    for _step in range(2):  # a stateless step's note would be read by the next
        attempts = _lines(await _out(kernel, _IPC_ATTEMPTS.replace("HOST_KEY", str(host_segment))))
        if layers.seccomp:
            assert set(attempts.values()) == {"EPERM"}, attempts


@pytest.mark.parametrize("layers", ["no-seccomp"], indirect=True)
async def test_each_kernel_has_its_own_ipc_namespace(make_kernel, layers: Protection, host_segment: int) -> None:
    # The namespace alone (seccomp off): the host's segments and another kernel's are
    # out of sight, and a kernel's own die with it.
    if not layers.namespaces:
        pytest.skip("this machine gives kernels no namespaces (root, or unprivileged user namespaces, needed)")
    key = 0x4F4C0000 + (os.getpid() & 0xFFFF)
    a, b = await make_kernel("persistent"), await make_kernel("stateless")
    made = _lines(await _out(a, _SYSCALL + f"""
seen = {{'host': call(29, {host_segment}, 0, 0), 'stat_any': call(31, 0, 15, buf)}}
seen['made'] = call(29, {key}, 64 << 20, 0o1666)
libc.shmat(seen['made'], None, 0)
print(json.dumps(seen))
"""))
    assert isinstance(made["made"], int), made
    assert made["host"] == "ENOENT" and made["stat_any"] == "EINVAL", made  # the host's: not even listed
    seen = _lines(await _out(b, _SYSCALL + f"print(json.dumps({{'other': call(29, {key}, 0, 0)}}))"))
    assert seen == {"other": "ENOENT"}
    ns = {os.readlink(f"/proc/{pid}/ns/ipc") for pid in (os.getpid(), a.control.child.pid, await _spare(b, 1))}
    assert len(ns) == 3
    await a.close()
    assert key not in _host_segment_keys()  # it lived and died in the kernel's namespace


async def _spare(kernel: Kernel, count: int) -> int:
    """The pid of the ``count``-th step process ready in a stateless kernel (waiting for it)."""
    while len(kernel.control._ready) < count:
        assert await kernel.control._read_control(5.0)
    return kernel.control._ready[count - 1].pid


def _host_segment_keys() -> list[int]:
    with open("/proc/sysvipc/shm") as table:
        return [int(line.split()[0]) for line in table.readlines()[1:]]


@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_no_ipc_object_outlives_its_kernel(make_kernel, semantics: str) -> None:
    key = 0x4F4D0000 + (os.getpid() & 0xFFFF)
    kernel = await make_kernel(semantics, memory_mb=128)
    await kernel.run_code(_SYSCALL + f"shmid = call(29, {key}, 320 << 20, 0o1666)\nlibc.shmat(shmid, None, 0)")
    kill_all_kernels()
    assert key not in _host_segment_keys()  # nothing resident, charged to nobody


# ---- 2. the working directory: fresh for every stateless step, its container out of reach ----

# Step code: attempt(name, fn, *args) records 'ok' or the OSError's class under ``done[name]``.
_ATTEMPT = """
import json
done = {}
def attempt(name, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        done[name] = 'ok'
    except OSError as e:
        done[name] = type(e).__name__
"""

_PLANT = _ATTEMPT + """
import os
open('note.txt', 'w').write('item 7 is worth 93')
attempt('xattr', os.setxattr, '.', 'user.note', b'item 7 is worth 93')
attempt('utime', os.utime, '.', ns=(1_000_000_093, 2_000_000_093))
attempt('chmod', os.chmod, '.', 0o751)
attempt('fifo', os.mkfifo, 'pipe')
attempt('parent_chmod', os.chmod, '..', 0o777)
attempt('parent_utime', os.utime, '..', ns=(3_000_000_093, 3_000_000_093))
attempt('parent_xattr', os.setxattr, '..', 'user.note', b'93')
attempt('parent_file', lambda: open('../note.txt', 'w').write('93'))
print(json.dumps(done))
"""

_LOOK = """
import json, os
st = os.stat('.')
try:
    xattrs = os.listxattr('.')
except OSError:
    xattrs = []
parent = os.stat('..')
try:
    parent_xattrs = os.listxattr('..')
except OSError:
    parent_xattrs = []
print(json.dumps({'entries': os.listdir('.'), 'mode': st.st_mode & 0o7777, 'mtime_ns': st.st_mtime_ns,
                  'atime_ns': st.st_atime_ns, 'xattrs': xattrs, 'parent_mode': parent.st_mode & 0o7777,
                  'parent_mtime_ns': parent.st_mtime_ns, 'parent_xattrs': parent_xattrs}))
"""


def _container_is_guarded(layers: Protection) -> bool:
    """Root owns the container; in a user namespace the kernel's steps never see it. Only an
    unprivileged kernel without namespaces owns and sees it (the documented gap)."""
    return layers.namespaces or layers.uid_drop


@pytest.mark.parametrize("layers", ["all", "no-namespaces"], indirect=True)
async def test_every_stateless_step_gets_a_fresh_working_directory(make_kernel, layers: Protection) -> None:
    kernel = await make_kernel("stateless")
    planted = _lines(await _out(kernel, _PLANT))
    assert planted["xattr"] in ("ok", "OSError") and planted["utime"] == planted["chmod"] == "ok", planted
    seen = _lines(await _out(kernel, _LOOK))
    assert seen["entries"] == [] and seen["mode"] == 0o700 and seen["xattrs"] == [], seen
    assert 1_000_000_093 not in (seen["atime_ns"], seen["mtime_ns"]) and seen["mtime_ns"] != 2_000_000_093, seen
    # The next step again: nothing the previous one left, by any name.
    assert _lines(await _out(kernel, _LOOK))["entries"] == []


@pytest.mark.parametrize("layers", ["all", "no-namespaces"], indirect=True)
@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_the_container_of_the_working_directory_is_out_of_reach(make_kernel, layers: Protection, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    container = kernel.control.container
    before = os.stat(container)
    planted = _lines(await _out(kernel, _PLANT))
    seen = _lines(await _out(kernel, _LOOK))
    if not _container_is_guarded(layers):
        # Unprivileged without namespaces the kernel's uid owns its container and reaches it
        # (documented): a stateless step finds it scrubbed, a persistent one its own.
        assert planted["parent_chmod"] == "ok" and planted["parent_file"] == "ok", planted
        if semantics == "stateless":
            assert seen["parent_mode"] == 0o711 and seen["parent_xattrs"] == [], seen
            assert 3_000_000_093 not in (seen["parent_mtime_ns"],), seen
            assert sorted(os.listdir(container)) == ["work"]
        return
    assert all(planted[name] != "ok" for name in ("parent_chmod", "parent_utime", "parent_xattr", "parent_file")), planted
    after = os.stat(container)
    assert after.st_mode == before.st_mode and 3_000_000_093 not in (after.st_mtime_ns, after.st_atime_ns)
    assert os.listxattr(container) == []
    assert [entry for entry in os.listdir(container) if not entry.startswith(RETIRED_PREFIX)] == ["work"]
    assert seen["parent_xattrs"] == [] and seen["parent_mtime_ns"] != 3_000_000_093


def _needs_seccomp(layers: Protection, what: str) -> None:
    if not layers.seccomp:
        pytest.skip(f"{what} is denied by seccomp, which this machine lacks (x86_64 Linux only)")


_LOCKS = _ATTEMPT + """
import fcntl, importlib.machinery, os, socket, sqlite3
# A file every kernel reads, its lock state shared (found on the kernel's own sys.path: the install may sit
# below a directory the kernel's uid cannot traverse, such as /root, and json.__file__ is that path).
shared = os.open(importlib.machinery.PathFinder.find_spec('json').origin, os.O_RDONLY)
a, b = socket.socketpair()
attempt('flock', fcntl.flock, shared, fcntl.LOCK_SH | fcntl.LOCK_NB)
attempt('posix lock', fcntl.lockf, shared, fcntl.LOCK_SH | fcntl.LOCK_NB)
attempt('sigio owner', fcntl.fcntl, a.fileno(), fcntl.F_SETOWN, os.getppid())
db = sqlite3.connect('file:notes.db?vfs=unix-none', uri=True)   # the documented way to a file database
db.execute('create table t (x)')
print(json.dumps(done))
"""


@pytest.mark.parametrize("layers", ["all", "no-namespaces"], indirect=True)
@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_no_file_locks_on_what_kernels_share(make_kernel, layers: Protection, semantics: str) -> None:
    # Two samples running at once would otherwise signal each other through the lock
    # state of the read-only files they both open (a lock on a read-only descriptor is allowed).
    _needs_seccomp(layers, "locking a file")
    kernel = await make_kernel(semantics)
    assert _lines(await _out(kernel, _LOCKS)) == dict.fromkeys(("flock", "posix lock", "sigio owner"), "PermissionError")


# ---- 3. process attributes ----------------------------------------------------------------

_ATTRIBUTES = _SYSCALL + """
import os, resource
def snapshot():
    return {
        'nice': os.getpriority(os.PRIO_PROCESS, 0),
        'affinity': sorted(os.sched_getaffinity(0)),
        'scheduler': os.sched_getscheduler(0),
        'ioprio': call(252, 1, 0),
        'rttime': resource.getrlimit(resource.RLIMIT_RTTIME),
        'nofile': resource.getrlimit(resource.RLIMIT_NOFILE),
    }
"""

_CHANGE = _ATTRIBUTES + """
results = {}
def attempt(name, fn, *args):
    try:
        fn(*args)
        results[name] = 'ok'
    except OSError as e:
        results[name] = errno.errorcode[e.errno]
others = OTHERS
for who, pid in others.items():
    attempt(f'prlimit {who}', resource.prlimit, pid, resource.RLIMIT_NOFILE, (18, 18))
    attempt(f'rttime {who}', resource.prlimit, pid, resource.RLIMIT_RTTIME, (7, 7))
    attempt(f'nice {who}', os.setpriority, os.PRIO_PROCESS, pid, 19)
    attempt(f'affinity {who}', os.sched_setaffinity, pid, {min(os.sched_getaffinity(0))})
    attempt(f'scheduler {who}', os.sched_setscheduler, pid, os.SCHED_IDLE, os.sched_param(0))
    results[f'ioprio {who}'] = call(251, 1, pid, 3 << 13)   # IOPRIO_WHO_PROCESS, class idle
attempt('nice of the uid', os.setpriority, os.PRIO_USER, 0, 19)
attempt('nice of the group', os.setpriority, os.PRIO_PGRP, 0, 19)
results['ioprio of the uid'] = call(251, 3, 0, 3 << 13)
# Its own attributes it may change: they end with its process.
attempt('own nice', os.setpriority, os.PRIO_PROCESS, 0, 7)
attempt('own affinity', os.sched_setaffinity, 0, {min(os.sched_getaffinity(0))})
attempt('own rttime', resource.setrlimit, resource.RLIMIT_RTTIME, (9, 9))
print(json.dumps(results))
"""


def _attributes_of(pid: int) -> dict:
    """What the harness reads of a process: the attributes every step process inherits from it."""
    ioprio = _libc.syscall(252, 1, pid)
    with open(f"/proc/{pid}/limits") as f:  # prlimit() would need CAP_SYS_RESOURCE for another uid
        limits = f.read()
    return {
        "nice": os.getpriority(os.PRIO_PROCESS, pid),
        "affinity": sorted(os.sched_getaffinity(pid)),
        "scheduler": os.sched_getscheduler(pid),
        "ioprio": ioprio,
        "limits": limits,
    }


@pytest.mark.parametrize("layers", ["all", "no-namespaces"], indirect=True)
@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_process_attributes_change_only_on_the_step_itself(make_kernel, layers: Protection, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    pristine = _lines(await _out(kernel, _ATTRIBUTES + "print(json.dumps(snapshot()))"))
    others = {"kernel": kernel.control.pid, "harness": os.getpid()}
    if semantics == "stateless":
        # The next step takes the first ready step process; the one after it waits, spare, meanwhile.
        others["spare"] = await _spare(kernel, 2)
    watched = {who: _attributes_of(pid) for who, pid in others.items()}
    harness_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    attempts = _lines(await _out(kernel, _CHANGE.replace("OTHERS", repr(others))))
    if semantics == "persistent":  # it crashes: its kernel restarts it, "all previous state lost"
        assert (await kernel.run_code("import os\nos._exit(3)")).kernel_restarted
    if layers.seccomp:
        refused = {name: outcome for name, outcome in attempts.items() if not name.startswith("own")}
        assert set(refused.values()) == {"EPERM"}, refused
    assert {attempts["own nice"], attempts["own affinity"], attempts["own rttime"]} == {"ok"}, attempts
    # Nothing reached the kernel process, the spare or the harness ...
    assert {who: _attributes_of(pid) for who, pid in others.items()} == watched
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == harness_nofile
    # ... so the next step process, fresh or restarted, starts from the pristine attributes.
    assert _lines(await _out(kernel, _ATTRIBUTES + "print(json.dumps(snapshot()))")) == pristine


# ---- 4. socket names ----------------------------------------------------------------------

_NAMES = """
import socket
a, b = socket.socketpair()
attempt('bind', a.bind, {name!r})
attempt('listen', b.listen, 1)
attempt('connect', a.connect, {taken!r})
print(json.dumps(done))
"""


@pytest.mark.parametrize("layers", ["all", "no-namespaces"], indirect=True)
@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_steps_name_no_socket_and_squat_none(make_kernel, layers: Protection, semantics: str) -> None:
    _needs_seccomp(layers, "bind()")
    name = f"\0opaque-knapsack-host-service-{os.getpid()}"
    taken = f"\0opaque-knapsack-harness-{os.getpid()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(taken)
    listener.listen(1)
    kernel = await make_kernel(semantics)
    try:
        outcome = _lines(await _out(kernel, _ATTEMPT + _NAMES.format(name=name, taken=taken)))
        assert outcome == {"bind": "PermissionError", "listen": "PermissionError", "connect": "PermissionError"}
        service = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        service.bind(name)  # the host's service still gets its name
        service.close()
    finally:
        listener.close()


# ---- 9. stat() outside the working directory -------------------------------------------------

_STAT = """
import json, os, stat
found = {{}}
for path in {paths!r}:
    try:
        os.stat(path)
        found[path] = 'exists'
    except OSError as e:
        found[path] = type(e).__name__
tmp = os.stat('/tmp')
dirs = []
for fd in range(1024):
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            dirs.append(fd)
    except OSError:
        pass
print(json.dumps({{'found': found, 'tmp': [tmp.st_dev, tmp.st_ino], 'dir_fds': dirs}}))
"""


@pytest.mark.parametrize("layers", ["all", "no-namespaces"], indirect=True)
@pytest.mark.parametrize("semantics", RUNTIME_NAMES)
async def test_stat_outside_the_working_directory(make_kernel, layers: Protection, semantics: str, tmp_path) -> None:
    other = await make_kernel("persistent")
    await other.run_code("open('notes.txt', 'w').write('x')")
    planted = tmp_path / "task.json"
    planted.write_text("{}")
    os.chmod(tmp_path, 0o755)
    kernel = await make_kernel(semantics)
    paths = ["/etc/passwd", "/proc/1", "/proc/self", "/home", "/var", "/usr/bin/env", "/dev/shm", "/sys",
             str(planted), other.control.workdir + "/notes.txt", other.control.container]
    seen = _lines(await _out(kernel, _STAT.format(paths=paths)))
    host_tmp = os.stat("/tmp")
    if layers.namespaces:
        # The private root shows the Python install, system libraries and the working directory: nothing else.
        assert set(seen["found"].values()) == {"FileNotFoundError"}, seen
        assert seen["tmp"] != [host_tmp.st_dev, host_tmp.st_ino]
        # No directory descriptor from outside the root is left to the step's code (fchdir would leave it).
        assert seen["dir_fds"] == [], seen
    else:
        # The one accepted leak without namespaces: metadata (not contents) of paths the step can name.
        assert seen["found"]["/etc/passwd"] == seen["found"]["/proc/1"] == "exists", seen


async def test_a_machine_without_namespaces_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    real = probe_protection()
    monkeypatch.setattr(control, "probe_protection", lambda: dataclasses.replace(real, namespaces=False))
    gaps = control.probe_protection().missing()
    assert any(gap.startswith("namespaces") for gap in gaps)
    with pytest.raises(control.KernelError, match="namespaces"):
        Kernel(SEMANTICS["persistent"], control.RuntimeConfig(require_isolation=True))


async def test_commands_beside_the_kernel_share_no_ipc_either() -> None:
    # exec() commands have the looser profile (child processes allowed), but no SysV IPC either.
    ipcmk = shutil.which("ipcmk")
    if ipcmk is None or not probe_protection().seccomp:
        pytest.skip("needs util-linux's ipcmk and seccomp")
    envs = await StatelessPythonSandbox.sample_init("t", None, {})
    try:
        result = await envs["default"].exec([ipcmk, "-M", "4096"])
        assert not result.success and "Operation not permitted" in result.stderr, result
    finally:
        await StatelessPythonSandbox.sample_cleanup("t", None, envs, False)


async def test_a_container_outside_the_temp_directory_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The private root shows the temp directory's kernel containers only; elsewhere a kernel could not see its own.
    if not probe_protection().namespaces:
        pytest.skip("only with namespaces (without them any container works)")
    outside = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    if outside is None:
        pytest.skip("needs a writable directory outside the temp directory")
    with pytest.raises(control.KernelError, match="temp directory"):
        Kernel(SEMANTICS["persistent"], control.RuntimeConfig(), workdir=outside)


async def test_retired_working_directories_are_deleted_in_bounded_batches(make_kernel) -> None:
    from opaque_knapsack.sandboxes.control import RETIRED_BATCH

    kernel = await make_kernel("stateless")
    container = kernel.control.container
    most = 0
    for step in range(3 * RETIRED_BATCH + 3):
        result = await kernel.run_code(f"open('left-{step}', 'w').write('x' * 4096)")
        assert result.error is None, result
        most = max(most, sum(entry.startswith(RETIRED_PREFIX) for entry in os.listdir(container)))
    assert most <= 2 * RETIRED_BATCH
    await kernel.close()
    assert not os.path.exists(container)
