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


def restrict_self(ruleset: int, no_new_privs: bool = False) -> bool:
    """Enforce a ruleset from ``landlock_ruleset`` on this process (one syscall: cheap after fork).

    ``no_new_privs``: already set (inherited), so not set again."""
    if not no_new_privs and not set_no_new_privs():
        return False
    return _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0


def landlock_ruleset(rules: list[tuple[str | int, int]], into: int = -1) -> int:
    """Build a Landlock ruleset fd allowing ``rules`` (path or open fd, rights); -1 if unavailable.

    An fd (opened before a privilege drop) names a directory the process may no
    longer be able to reach by path. Everything not listed is denied for every
    filesystem right the ABI knows; from ABI 4 all TCP bind/connect is denied,
    from ABI 6 signals and abstract unix sockets are scoped to the domain.
    ``into``: a ruleset made earlier by this function, which gets the rules
    added and is returned (it is closed if adding fails).
    """
    abi = landlock_abi()
    if abi <= 0:
        return -1
    handled = _handled_fs(abi)
    if into >= 0:
        ruleset = into
    else:
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
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438,
    "sendto": 44, "sendmsg": 46, "socketpair": 53, "prctl": 157, "inotify_init": 253,
    "inotify_add_watch": 254, "inotify_init1": 294, "fanotify_init": 300, "fanotify_mark": 301,
    "sendmmsg": 307,
    # System V IPC and POSIX message queues
    "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66, "shmdt": 67,
    "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semtimedop": 220, "mq_open": 240,
    "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
    # sockets: naming and accepting
    "connect": 42, "accept": 43, "bind": 49, "listen": 50, "accept4": 288,
    # process attributes that may name another process
    "fcntl": 72, "flock": 73, "ioctl": 16, "syslog": 103,
    "setpriority": 141, "sched_setparam": 142, "sched_setscheduler": 144, "sched_setaffinity": 203,
    "ioprio_set": 251, "migrate_pages": 256, "move_pages": 279, "prlimit64": 302, "sched_setattr": 314,
}
_AF_UNIX = 1
_SOCK_STREAM = 1
_SOCK_TYPE_MASK = 0xF  # the rest of socketpair's type argument is SOCK_CLOEXEC / SOCK_NONBLOCK
_PR_SET_PDEATHSIG_ARG = 1
_PR_SCHED_CORE = 62  # can share a core-scheduling cookie with another pid
_PRIO_PROCESS = 0
_IOPRIO_WHO_PROCESS = 1

# Denied for every confined process (kernels and exec'd commands).
_ALWAYS_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "personality", "pivot_root", "chroot", "mount", "umount2",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "syslog",  # the kernel log: where dmesg is open to all, a segfault's line is a note to anyone
    "init_module", "finit_module", "delete_module", "kexec_load", "add_key", "request_key",
    "keyctl", "unshare", "setns", "perf_event_open", "name_to_handle_at",
    "open_by_handle_at", "bpf", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
    # System V IPC and POSIX message queues: objects that outlive their creator and that
    # any process of the namespace may find (a note from one step, or sample, to the next).
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop",
    "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr",
)
# Denied additionally for the Python kernel: no new processes, no escape from its
# process group, no sockets, signals only to itself, no message with a destination
# or descriptors (sendmsg/sendmmsg carry theirs in memory BPF cannot read), no
# watching other directories (inotify/fanotify would show other samples' workdirs appear).
# A step names no socket (bind/listen: squatting an abstract name, a channel through
# bind collisions) and reaches none by name (connect/accept): its one socket is its
# connected channel, and socketpair() gives only connected pairs.
_KERNEL_DENIED = (
    "socket", "fork", "vfork", "execve", "execveat", "setpgid", "setsid", "tkill",
    "sendmsg", "sendmmsg", "inotify_init", "inotify_init1", "inotify_add_watch",
    "fanotify_init", "fanotify_mark", "bind", "listen", "connect", "accept", "accept4", "flock",
)
# fcntl commands denied to step processes: file locks and leases (lock state lives on the
# inode, and the read-only files every kernel shares would carry it from one sample to
# another), directory notification, and naming a process to get SIGIO for a descriptor.
_FCNTL_DENIED = (6, 7, 37, 38, 1024, 1026, 8, 15, 10)  # F_SETLK(W), F_OFD_SETLK(W), F_SETLEASE, F_NOTIFY, F_SETOWN(_EX), F_SETSIG
_IOCTL_DENIED = (0x8901, 0x8902)  # FIOSETOWN, SIOCSPGRP: F_SETOWN by another name
# Calls that change a process's attributes, allowed only on the calling process
# itself (pid argument 0 or its own pid): what a step changes dies with it, and never
# reaches its kernel process, the spare step process or the harness, whose attributes
# every later step process would inherit. (syscall, index of the pid argument).
_SELF_ONLY = (
    ("prlimit64", 0), ("sched_setaffinity", 0), ("sched_setscheduler", 0), ("sched_setparam", 0),
    ("sched_setattr", 0), ("migrate_pages", 0), ("move_pages", 0),
)
# The same with a "which" argument that must name a single process: (syscall, which
# index, its value, pid index). PRIO_PGRP/PRIO_USER would reach every process of the
# group or of the uid (the harness's, where kernels share its uid).
_SELF_ONLY_WHICH = (
    ("setpriority", 0, _PRIO_PROCESS, 1),
    ("ioprio_set", 0, _IOPRIO_WHO_PROCESS, 1),
)


def _ins(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


_JA = 0x05  # BPF_JMP | BPF_JA: an unconditional jump with a 32-bit offset
_MAX_JUMP = 255  # jt and jf are one byte each
_LEAF = 8  # syscalls compared one by one at the bottom of the search


def _build_filter(strict: bool, own_pid: int) -> bytes:
    """The syscall filter: arch and x32 checks, then a binary search on the syscall number.

    Every syscall with a rule (see ``_syscall_rules``) is found in about log2(90)
    comparisons, and every other syscall falls through to allow. A linear chain of
    comparisons ran about a hundred instructions for each allowed call, and installing
    it cost more: the kernel runs the program once for every syscall number to build
    its cache of calls it allows whatever their arguments.
    """
    errno = 0x00050000  # SECCOMP_RET_ERRNO
    prog: list[bytes] = [
        _ins(_LD_W_ABS, 0, 0, _OFF_ARCH),
        _ins(_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        _ins(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _ins(_LD_W_ABS, 0, 0, _OFF_NR),
        _ins(_JGE_K, 0, 1, _X32_BIT),
        _ins(_RET_K, 0, 0, errno | _EPERM),
    ]
    rules = _syscall_rules(strict, own_pid, errno)
    prog += _search(sorted(rules.items()))
    return b"".join(prog)


def _search(rules: list[tuple[int, list[bytes]]]) -> list[bytes]:
    """Code that, with the syscall number in A, runs the body of its rule, or allows it.

    A body must end every path in a return: it may load arguments into A.
    """
    if len(rules) <= _LEAF:
        # the comparisons, the allow they fall through to, then each distinct body once
        # (every plain deny of the leaf shares one return)
        bodies: list[list[bytes]] = []
        for _, body in rules:
            if body not in bodies:
                bodies.append(body)
        starts = [sum(len(b) for b in bodies[:i]) for i in range(len(bodies))]
        code: list[bytes] = []
        for index, (nr, body) in enumerate(rules):
            jump = len(rules) - index + starts[bodies.index(body)]  # past the later comparisons and the allow
            if jump > _MAX_JUMP:
                raise ValueError(f"the rule for syscall {nr} is further than a jump can reach")
            code.append(_ins(_JEQ_K, jump, 0, nr))
        code.append(_ins(_RET_K, 0, 0, _RET_ALLOW))
        return code + [instruction for body in bodies for instruction in body]
    middle = len(rules) // 2
    low, high = _search(rules[:middle]), _search(rules[middle:])
    pivot = rules[middle][0]
    if len(low) <= _MAX_JUMP:
        return [_ins(_JGE_K, len(low), 0, pivot)] + low + high
    # too far for jt: the true branch lands on a long jump over the lower half
    return [_ins(_JGE_K, 0, 1, pivot), _ins(_JA, 0, 0, len(low))] + low + high


def _syscall_rules(strict: bool, own_pid: int, errno: int) -> dict[int, list[bytes]]:
    """Each syscall with a rule, and the rule's body (run once the number matched).

    Syscalls without a rule are allowed. A syscall has at most one rule.
    """
    deny = errno | _EPERM
    rules: dict[int, list[bytes]] = {}

    def add(name: str, body: list[bytes]) -> None:
        if NR[name] in rules:
            raise ValueError(f"two seccomp rules for {name}")
        rules[NR[name]] = body

    denied = list(_ALWAYS_DENIED) + (list(_KERNEL_DENIED) if strict else [])
    for name in denied:
        add(name, [_ins(_RET_K, 0, 0, deny)])
    if strict:
        # clone3 passes its flags in memory BPF cannot read: ENOSYS makes libc fall back to clone.
        add("clone3", [_ins(_RET_K, 0, 0, errno | _ENOSYS)])
        # clone: threads only.
        add("clone", [
            _ins(_LD_W_ABS, 0, 0, _OFF_ARG0),
            _ins(_JSET_K, 0, 1, _CLONE_THREAD),
            _ins(_RET_K, 0, 0, _RET_ALLOW),
            _ins(_RET_K, 0, 0, deny),
        ])
        # kill / rt_sigqueueinfo: pid must be 0, own pid or own group; tgkill / rt_tgsigqueueinfo: own tgid.
        for name in ("kill", "rt_sigqueueinfo"):
            add(name, [
                _ins(_LD_W_ABS, 0, 0, _OFF_ARG0),
                _ins(_JEQ_K, 3, 0, 0),
                _ins(_JEQ_K, 2, 0, own_pid),
                _ins(_JEQ_K, 1, 0, -own_pid),
                _ins(_RET_K, 0, 0, deny),
                _ins(_RET_K, 0, 0, _RET_ALLOW),
            ])
        for name in ("tgkill", "rt_tgsigqueueinfo"):
            add(name, [
                _ins(_LD_W_ABS, 0, 0, _OFF_ARG0),
                _ins(_JEQ_K, 1, 0, own_pid),
                _ins(_RET_K, 0, 0, deny),
                _ins(_RET_K, 0, 0, _RET_ALLOW),
            ])
        for name, body in _argument_rules(deny):
            add(name, body)
    for name, body in _attribute_rules(deny, own_pid, strict):
        add(name, body)
    return rules


def _arg(index: int, high: bool = False) -> int:
    return _OFF_ARG0 + 8 * index + (4 if high else 0)


def _argument_rules(deny: int) -> list[tuple[str, list[bytes]]]:
    """Rules on syscall arguments for the Python kernel's step processes.

    - socketpair: only AF_UNIX stream pairs (a datagram pair could sendto any
      path-named socket its uid may write, such as /dev/log);
    - sendto: no destination address (the channel is connected).
    """
    return [
        # socketpair(domain, type, protocol)
        ("socketpair", [
            _ins(_LD_W_ABS, 0, 0, _arg(0)),
            _ins(_JEQ_K, 0, 4, _AF_UNIX),
            _ins(_LD_W_ABS, 0, 0, _arg(1)),
            _ins(_AND_K, 0, 0, _SOCK_TYPE_MASK),
            _ins(_JEQ_K, 0, 1, _SOCK_STREAM),
            _ins(_RET_K, 0, 0, _RET_ALLOW),
            _ins(_RET_K, 0, 0, deny),
        ]),
        # sendto(fd, buf, len, flags, dest_addr, addrlen): dest_addr must be NULL
        ("sendto", [
            _ins(_LD_W_ABS, 0, 0, _arg(4)),
            _ins(_JEQ_K, 0, 2, 0),
            _ins(_LD_W_ABS, 0, 0, _arg(4, high=True)),
            _ins(_JEQ_K, 1, 0, 0),
            _ins(_RET_K, 0, 0, deny),
            _ins(_RET_K, 0, 0, _RET_ALLOW),
        ]),
    ]


def _attribute_rules(deny: int, own_pid: int, strict: bool) -> list[tuple[str, list[bytes]]]:
    """Process attributes: changed only on the calling process itself (both profiles).

    - prlimit64, sched_set*, migrate_pages, move_pages: pid 0 or the caller's;
    - setpriority, ioprio_set: PRIO_PROCESS / IOPRIO_WHO_PROCESS, and pid 0 or the caller's;
    - prctl: no PR_SCHED_CORE (it shares a cookie with another pid); for step
      processes no PR_SET_PDEATHSIG either, so a step process cannot clear the
      signal that kills it with its kernel;
    - step processes: no file locks, leases or dnotify, no SIGIO owner (fcntl, ioctl).
    """
    rules: list[tuple[str, list[bytes]]] = []
    for name, pid_arg in _SELF_ONLY:
        rules.append((name, [
            _ins(_LD_W_ABS, 0, 0, _arg(pid_arg)),
            _ins(_JEQ_K, 2, 0, 0),
            _ins(_JEQ_K, 1, 0, own_pid),
            _ins(_RET_K, 0, 0, deny),
            _ins(_RET_K, 0, 0, _RET_ALLOW),
        ]))
    for name, which_arg, which, pid_arg in _SELF_ONLY_WHICH:
        rules.append((name, [
            _ins(_LD_W_ABS, 0, 0, _arg(which_arg)),
            _ins(_JEQ_K, 0, 3, which),
            _ins(_LD_W_ABS, 0, 0, _arg(pid_arg)),
            _ins(_JEQ_K, 2, 0, 0),
            _ins(_JEQ_K, 1, 0, own_pid),
            _ins(_RET_K, 0, 0, deny),
            _ins(_RET_K, 0, 0, _RET_ALLOW),
        ]))
    rules.append(("prctl", _deny_values(0, [_PR_SCHED_CORE] + ([_PR_SET_PDEATHSIG_ARG] if strict else []), deny)))
    if strict:
        rules.append(("fcntl", _deny_values(1, list(_FCNTL_DENIED), deny)))
        rules.append(("ioctl", _deny_values(1, list(_IOCTL_DENIED), deny)))
    return rules


def _deny_values(arg: int, values: list[int], deny: int) -> list[bytes]:
    """A rule's body: deny when argument ``arg`` (low 32 bits) is one of ``values``."""
    body = [_ins(_LD_W_ABS, 0, 0, _arg(arg))]
    body += [_ins(_JEQ_K, len(values) - i, 0, value) for i, value in enumerate(values)]
    return body + [_ins(_RET_K, 0, 0, _RET_ALLOW), _ins(_RET_K, 0, 0, deny)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PID_PLACEHOLDER = 0x7FFFFFF0


def seccomp_template(strict: bool) -> bytes:
    """The filter with a placeholder for the pid it protects; ``apply_seccomp`` fills it in."""
    return _build_filter(strict, _PID_PLACEHOLDER)


class PreparedFilter:
    """The syscall filter made ready before a fork, so the child only writes in its pid and installs it.

    A freshly forked Python process pays a page copy for nearly every object it
    touches: building the program there cost a step process several times what
    installing it does. The calling process must have set no_new_privs (it is
    inherited), unless the child has CAP_SYS_ADMIN.
    """

    def __init__(self, strict: bool) -> None:
        template = seccomp_template(strict)
        self.buf = ctypes.create_string_buffer(template, len(template))
        self.fprog = _SockFprog(len=len(template) // 8, filter=ctypes.cast(self.buf, ctypes.c_void_p))
        # the placeholder's places: the ``k`` field (offset 4) of each instruction that compares with it
        ks = [(offset + 4, struct.unpack_from("I", template, offset + 4)[0]) for offset in range(0, len(template), 8)]
        self.own = [offset for offset, k in ks if k == _PID_PLACEHOLDER]
        self.negated = [offset for offset, k in ks if k == (-_PID_PLACEHOLDER) & 0xFFFFFFFF]
        self.args = (ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(self.fprog), ctypes.c_ulong(0), ctypes.c_ulong(0))

    def write_pid(self, pid: int) -> None:
        """Make the program the one that protects process ``pid``."""
        for offset in self.own:
            struct.pack_into("I", self.buf, offset, pid)
        for offset in self.negated:
            struct.pack_into("I", self.buf, offset, (-pid) & 0xFFFFFFFF)

    def install(self) -> bool:
        """Install the filter for the calling process (its pid written in); False on failure."""
        self.write_pid(os.getpid())
        return _libc.prctl(_PR_SET_SECCOMP, *self.args) == 0


def apply_seccomp(strict: bool) -> bool:
    """Install the syscall filter (``strict``: the Python-kernel profile). False if unavailable."""
    if not seccomp_available() or not set_no_new_privs():
        return False
    return PreparedFilter(strict).install()


# ---- private namespaces and root (Linux) --------------------------------------
#
# A kernel gets its own IPC namespace (nothing SysV or mqueue to share with the host
# or another kernel) and its own mount namespace whose root shows only what it needs:
# the Python install and system libraries read-only, /dev/null and /dev/urandom, and
# its working directory. Root creates them directly; an unprivileged process through
# its own user namespace, which maps only its own uid and gid.

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REC = 0x4000
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_SYS_OPEN_TREE = 428  # these three have one number on every architecture (the unified table)
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_SYS_PIVOT_ROOT = 155 if platform.machine() == "x86_64" else 41  # x86_64, else the unified table
_OPEN_TREE_CLONE = 1
_MOVE_MOUNT_F_EMPTY_PATH = 4
_MOUNT_ATTR_RDONLY = 1
_MOUNT_ATTR_NOSUID = 2
_MOUNT_ATTR_NODEV = 4
_CAPABILITY_VERSION_3 = 0x20080522

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_namespaces(user: bool, ipc: bool) -> None:
    """Move this (single-threaded) process into a new mount namespace (and IPC one if
    ``ipc``); raises OSError.

    ``user``: through a new user namespace that maps only this process's uid and
    gid (no privilege needed where the machine allows unprivileged user
    namespaces); the process then holds capabilities over its own namespaces only,
    and is left dumpable (the caller makes it undumpable again). Mounts made
    afterwards never propagate back to the host.
    """
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNS | (_CLONE_NEWIPC if ipc else 0) | (_CLONE_NEWUSER if user else 0)
    _check(_libc.unshare(flags), "unshare")
    if user:
        # An undumpable process's /proc files are root's: its own maps must be writable.
        set_dumpable(True)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(_libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")


def pivot_into(root: str) -> None:
    """Make the mount at ``root`` this mount namespace's root and drop the old one (once
    per zygote: later namespaces copied from this one hold only the new root's mounts)."""
    os.chdir(root)
    _check(int(_libc.syscall(_SYS_PIVOT_ROOT, b".", b".")), "pivot_root")
    unmount(".")
    os.chdir("/")


def _set_attr(fd: int, path: str, flags: int, attr_set: int) -> None:
    attr = _MountAttr(attr_set=attr_set)
    _check(_libc.syscall(_SYS_MOUNT_SETATTR, ctypes.c_int(fd), os.fsencode(path), ctypes.c_uint(flags),
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), f"mount_setattr {path}")


def bind(source: str | int, target: str, read_only: bool, recursive: bool = True) -> None:
    """Bind ``source`` (a path, or an open descriptor of this mount namespace) onto ``target``.

    Not ``recursive``: without the mounts below ``source`` (a private root mounted
    over the directory itself would come along). ``read_only``: also nosuid, and
    nodev unless ``source`` is itself a device (/dev/null); a writable bind keeps
    its source's flags (a kernel's own directory: nothing to gain, one call less per kernel)."""
    flags = _OPEN_TREE_CLONE | (_AT_RECURSIVE if recursive else 0) | os.O_CLOEXEC
    if isinstance(source, int):
        tree = _libc.syscall(_SYS_OPEN_TREE, ctypes.c_int(source), b"", ctypes.c_uint(flags | _AT_EMPTY_PATH))
    else:
        tree = _libc.syscall(_SYS_OPEN_TREE, ctypes.c_int(_AT_FDCWD), os.fsencode(source), ctypes.c_uint(flags))
    tree = _check(int(tree), f"open_tree {source}")
    try:
        if read_only:
            mode = os.stat(source).st_mode
            device = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            attrs = _MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | (0 if device else _MOUNT_ATTR_NODEV)
            _set_attr(tree, "", _AT_EMPTY_PATH | (_AT_RECURSIVE if recursive else 0), attrs)
        _check(_libc.syscall(_SYS_MOVE_MOUNT, ctypes.c_int(tree), b"", ctypes.c_int(_AT_FDCWD), os.fsencode(target),
                             ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount {target}")
    finally:
        os.close(tree)


def unmount(target: str) -> None:
    _check(_libc.umount2(os.fsencode(target), _MNT_DETACH), f"umount {target}")


def _mirror(root: str, path: str) -> str:
    """Make ``path`` resolve in ``root`` as on the host: its symlinked components
    become the same symlinks; returns the real path (where the caller binds it).

    Nothing is created through a symlink already in ``root`` (whose absolute
    target would resolve on the host while the root is built): each link is made
    at the real path of its parent.
    """
    real = os.path.realpath(path)
    prefix = ""
    for part in path.strip("/").split("/"):
        prefix += "/" + part
        if os.path.islink(prefix):
            link = root + os.path.join(os.path.realpath(os.path.dirname(prefix)), part)
            os.makedirs(os.path.dirname(link), mode=0o755, exist_ok=True)
            if not os.path.lexists(link):
                os.symlink(os.readlink(prefix), link)
    return real


def _mount_point(target: str, is_dir: bool) -> None:
    try:  # the parent is usually there (a kernel's view: the tmpfs's root)
        if is_dir:
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        return
    except FileNotFoundError:
        pass  # a parent is missing: made below, with every missing ancestor
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


_VIEW_FLAGS = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC


def mount_view(mountpoint: str, read_only: list[str], read_write: list[tuple[str | int, str]]) -> None:
    """Mount at ``mountpoint`` a fresh read-only tmpfs that shows only the given paths.

    ``read_only`` host paths appear at the same paths below it, read-only (their
    symlinked components mirrored), with what is mounted below them;
    ``read_write`` pairs (host path or descriptor, path below the mountpoint) are
    bound writable, alone (``mountpoint`` itself may be below one of them).
    The view and what is bound read-only are nosuid and nodev (devices bound
    read-only excepted).

    A kernel makes one at every start, in a freshly forked process where each
    Python function run for the first time costs page copies: the path is kept
    to a few plain calls (mkdir, open_tree, move_mount, one remount).
    """
    target = os.fsencode(mountpoint)
    _check(_libc.mount(b"tmpfs", target, b"tmpfs", _VIEW_FLAGS, b"mode=0755,size=1m,nr_inodes=1024"),
           f"mount a view at {mountpoint}")
    for path in read_only:
        real = _mirror(mountpoint, path)
        if os.path.lexists(mountpoint + real):
            continue  # already bound (two names for one directory)
        _mount_point(mountpoint + real, os.path.isdir(real))
        bind(real, mountpoint + real, read_only=True)
    for source, path in read_write:
        is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        _mount_point(mountpoint + path, is_dir)
        bind(source, mountpoint + path, read_only=False, recursive=False)
    # the tmpfs is this view's alone: its superblock goes read-only (the binds keep their own flags)
    _check(_libc.mount(None, target, None, _MS_REMOUNT | _MS_RDONLY | _VIEW_FLAGS, None), f"make {mountpoint} read-only")


def drop_capabilities() -> bool:
    """Clear every capability set (those a user namespace granted included)."""
    header = _CapHeader(version=_CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()
    return _libc.capset(ctypes.byref(header), ctypes.byref(data)) == 0
