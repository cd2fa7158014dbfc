"""Confinement layers for kernel processes: privileges, rlimits, Landlock, seccomp.

Standard library only: the kernel runs this file as a plain script (``python -S``),
and the harness imports it to probe which layers the machine offers. Each layer
reports whether it took effect, so the caller can record the protection level
instead of assuming it; none raises when the kernel (Linux) lacks it.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import stat
import struct

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_MODE_FILTER = 2

# Landlock filesystem rights, in ABI order (bit i is introduced by the ABI noted).
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
_FILE_ONLY_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

READ_ONLY = FS_READ_FILE | FS_READ_DIR
READ_EXEC = READ_ONLY | FS_EXECUTE
READ_WRITE = (
    READ_ONLY
    | FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SYM
    | FS_MAKE_FIFO
    | FS_REFER
    | FS_TRUNCATE
)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int


def _prctl(option: int, arg: int) -> bool:
    return _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0


def landlock_abi() -> int:
    """The Landlock ABI version the running kernel offers (0: none)."""
    if platform.system() != "Linux":
        return 0
    abi = _libc.syscall(
        _SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION)
    )
    return max(int(abi), 0)


def seccomp_available() -> bool:
    return platform.system() == "Linux" and platform.machine() == "x86_64"


def set_no_new_privs() -> bool:
    return _prctl(_PR_SET_NO_NEW_PRIVS, 1)


def set_dumpable(dumpable: bool) -> bool:
    """Undumpable: /proc/<pid>/mem, fd, environ etc. become root-owned, closed to same-uid processes."""
    return _prctl(_PR_SET_DUMPABLE, 1 if dumpable else 0)


def set_parent_death_signal(sig: int) -> bool:
    return _prctl(_PR_SET_PDEATHSIG, sig)


def drop_privileges(uid: int, gid: int) -> bool:
    """Become ``uid``/``gid`` with no supplementary groups and no capabilities (needs root)."""
    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    return os.getuid() == uid and os.geteuid() == uid


def set_limits(limits: dict[str, int]) -> None:
    """Set soft = hard for each named rlimit; an unprivileged process can never raise them."""
    for name, value in limits.items():
        which = getattr(resource, name)
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY and value > hard:
            value = hard
        resource.setrlimit(which, (value, value))


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def apply_landlock(rules: list[tuple[str | int, int]]) -> int:
    """Confine this process (and its future children) to ``rules`` (path or open fd, rights).

    Returns the ABI used (0: not applied). See ``landlock_ruleset``.
    """
    ruleset = landlock_ruleset(rules)
    if ruleset < 0:
        return 0
    try:
        return landlock_abi() if restrict_self(ruleset) else 0
    finally:
        os.close(ruleset)


def restrict_self(ruleset: int) -> bool:
    """Enforce a ruleset from ``landlock_ruleset`` on this process (one syscall: cheap after fork)."""
    if not set_no_new_privs():
        return False
    return _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0


def landlock_ruleset(rules: list[tuple[str | int, int]]) -> int:
    """Build a Landlock ruleset fd allowing ``rules`` (path or open fd, rights); -1 if unavailable.

    An fd (opened before a privilege drop) names a directory the process may no
    longer be able to reach by path. Everything not listed is denied for every
    filesystem right the ABI knows; from ABI 4 all TCP bind/connect is denied,
    from ABI 6 signals and abstract unix sockets are scoped to the domain.
    """
    abi = landlock_abi()
    if abi <= 0:
        return -1
    handled = _handled_fs(abi)
    attr = _RulesetAttr(fs=handled, net=3 if abi >= 4 else 0, scoped=3 if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return -1
    try:
        for path, rights in rules:
            try:
                fd = path if isinstance(path, int) else os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                allowed = rights & handled
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    allowed &= _FILE_ONLY_RIGHTS
                beneath = _PathBeneath(allowed=allowed, parent_fd=fd)
                if _libc.syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
                                 ctypes.byref(beneath), ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                if not isinstance(path, int):
                    os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    os.set_inheritable(ruleset, False)
    return ruleset


# ---- seccomp-BPF (x86_64) -------------------------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_EPERM = 1
_ENOSYS = 38
_CLONE_THREAD = 0x00010000

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0 = 16
_X32_BIT = 0x40000000

# x86_64 syscall numbers
NR = {
    "socket": 41, "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "kill": 62,
    "ptrace": 101, "setpgid": 109, "setsid": 112, "rt_sigqueueinfo": 129, "personality": 135,
    "pivot_root": 155, "chroot": 161, "mount": 165, "umount2": 166, "init_module": 175,
    "delete_module": 176, "tkill": 200, "tgkill": 234, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "unshare": 272, "rt_tgsigqueueinfo": 297,
    "perf_event_open": 298, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "bpf": 321, "execveat": 322, "userfaultfd": 323, "pidfd_send_signal": 424,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438,
    "sendto": 44, "sendmsg": 46, "socketpair": 53, "prctl": 157, "inotify_init": 253,
    "inotify_add_watch": 254, "inotify_init1": 294, "fanotify_init": 300, "fanotify_mark": 301,
    "sendmmsg": 307,
}
_AF_UNIX = 1
_SOCK_STREAM = 1
_SOCK_TYPE_MASK = 0xF  # the rest of socketpair's type argument is SOCK_CLOEXEC / SOCK_NONBLOCK
_PR_SET_PDEATHSIG_ARG = 1

# Denied for every confined process (kernels and exec'd commands).
_ALWAYS_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "personality", "pivot_root", "chroot", "mount", "umount2",
    "init_module", "finit_module", "delete_module", "kexec_load", "add_key", "request_key",
    "keyctl", "unshare", "setns", "perf_event_open", "name_to_handle_at",
    "open_by_handle_at", "bpf", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
)
# Denied additionally for the Python kernel: no new processes, no escape from its
# process group, no sockets, signals only to itself, no message with a destination
# or descriptors (sendmsg/sendmmsg carry theirs in memory BPF cannot read), no
# watching other directories (inotify/fanotify would show other samples' workdirs appear).
_KERNEL_DENIED = (
    "socket", "fork", "vfork", "execve", "execveat", "setpgid", "setsid", "tkill",
    "sendmsg", "sendmmsg", "inotify_init", "inotify_init1", "inotify_add_watch",
    "fanotify_init", "fanotify_mark",
)


def _ins(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _build_filter(strict: bool, own_pid: int) -> bytes:
    errno = 0x00050000  # SECCOMP_RET_ERRNO
    prog: list[bytes] = [
        _ins(_LD_W_ABS, 0, 0, _OFF_ARCH),
        _ins(_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        _ins(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _ins(_LD_W_ABS, 0, 0, _OFF_NR),
        _ins(_JGE_K, 0, 1, _X32_BIT),
        _ins(_RET_K, 0, 0, errno | _EPERM),
    ]
    denied = list(_ALWAYS_DENIED) + (list(_KERNEL_DENIED) if strict else [])
    for name in denied:
        prog.append(_ins(_JEQ_K, 0, 1, NR[name]))
        prog.append(_ins(_RET_K, 0, 0, errno | _EPERM))
    if strict:
        # clone3 passes its flags in memory BPF cannot read: ENOSYS makes libc fall back to clone.
        prog.append(_ins(_JEQ_K, 0, 1, NR["clone3"]))
        prog.append(_ins(_RET_K, 0, 0, errno | _ENOSYS))
        # clone: threads only.
        prog += [
            _ins(_JEQ_K, 0, 4, NR["clone"]),
            _ins(_LD_W_ABS, 0, 0, _OFF_ARG0),
            _ins(_JSET_K, 0, 1, _CLONE_THREAD),
            _ins(_RET_K, 0, 0, _RET_ALLOW),
            _ins(_RET_K, 0, 0, errno | _EPERM),
        ]
        # kill / rt_sigqueueinfo: pid must be 0, own pid or own group; tgkill / rt_tgsigqueueinfo: own tgid.
        for name in ("kill", "rt_sigqueueinfo"):
            prog += [
                _ins(_JEQ_K, 0, 6, NR[name]),
                _ins(_LD_W_ABS, 0, 0, _OFF_ARG0),
                _ins(_JEQ_K, 3, 0, 0),
                _ins(_JEQ_K, 2, 0, own_pid),
                _ins(_JEQ_K, 1, 0, -own_pid),
                _ins(_RET_K, 0, 0, errno | _EPERM),
                _ins(_RET_K, 0, 0, _RET_ALLOW),
            ]
        for name in ("tgkill", "rt_tgsigqueueinfo"):
            prog += [
                _ins(_JEQ_K, 0, 4, NR[name]),
                _ins(_LD_W_ABS, 0, 0, _OFF_ARG0),
                _ins(_JEQ_K, 1, 0, own_pid),
                _ins(_RET_K, 0, 0, errno | _EPERM),
                _ins(_RET_K, 0, 0, _RET_ALLOW),
            ]
        prog += _argument_rules(errno | _EPERM)
    prog.append(_ins(_RET_K, 0, 0, _RET_ALLOW))
    return b"".join(prog)


def _arg(index: int, high: bool = False) -> int:
    return _OFF_ARG0 + 8 * index + (4 if high else 0)


def _argument_rules(deny: int) -> list[bytes]:
    """Rules on syscall arguments for the Python kernel's step processes.

    - socketpair: only AF_UNIX stream pairs (a datagram pair could sendto any
      path-named socket its uid may write, such as /dev/log);
    - sendto: no destination address (the channel is connected);
    - prctl: no PR_SET_PDEATHSIG, so a step process cannot clear the signal that
      kills it with its kernel.
    """
    return [
        # socketpair(domain, type, protocol)
        _ins(_JEQ_K, 0, 7, NR["socketpair"]),
        _ins(_LD_W_ABS, 0, 0, _arg(0)),
        _ins(_JEQ_K, 0, 4, _AF_UNIX),
        _ins(_LD_W_ABS, 0, 0, _arg(1)),
        _ins(_AND_K, 0, 0, _SOCK_TYPE_MASK),
        _ins(_JEQ_K, 0, 1, _SOCK_STREAM),
        _ins(_RET_K, 0, 0, _RET_ALLOW),
        _ins(_RET_K, 0, 0, deny),
        # sendto(fd, buf, len, flags, dest_addr, addrlen): dest_addr must be NULL
        _ins(_JEQ_K, 0, 6, NR["sendto"]),
        _ins(_LD_W_ABS, 0, 0, _arg(4)),
        _ins(_JEQ_K, 0, 2, 0),
        _ins(_LD_W_ABS, 0, 0, _arg(4, high=True)),
        _ins(_JEQ_K, 1, 0, 0),
        _ins(_RET_K, 0, 0, deny),
        _ins(_RET_K, 0, 0, _RET_ALLOW),
        # prctl(option, ...): not PR_SET_PDEATHSIG
        _ins(_JEQ_K, 0, 4, NR["prctl"]),
        _ins(_LD_W_ABS, 0, 0, _arg(0)),
        _ins(_JEQ_K, 1, 0, _PR_SET_PDEATHSIG_ARG),
        _ins(_RET_K, 0, 0, _RET_ALLOW),
        _ins(_RET_K, 0, 0, deny),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PID_PLACEHOLDER = 0x7FFFFFF0


def seccomp_template(strict: bool) -> bytes:
    """The filter with a placeholder for the pid it protects; ``apply_seccomp`` fills it in."""
    return _build_filter(strict, _PID_PLACEHOLDER)


def apply_seccomp(strict: bool, template: bytes | None = None) -> bool:
    """Install the syscall filter (``strict``: the Python-kernel profile). False if unavailable."""
    if not seccomp_available():
        return False
    if template is None:
        template = seccomp_template(strict)
    pid = os.getpid()
    program = template.replace(struct.pack("I", _PID_PLACEHOLDER), struct.pack("I", pid)).replace(
        struct.pack("I", (-_PID_PLACEHOLDER) & 0xFFFFFFFF), struct.pack("I", (-pid) & 0xFFFFFFFF)
    )
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len=len(program) // 8, filter=ctypes.cast(buf, ctypes.c_void_p))
    if not set_no_new_privs():
        return False
    return _libc.prctl(_PR_SET_SECCOMP, ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
