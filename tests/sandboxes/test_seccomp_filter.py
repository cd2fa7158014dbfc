"""The seccomp program, run in a small BPF interpreter against the policy written out in Python.

The real-kernel tests (test_channels, test_limits, ...) check that denied calls fail in a
live step process; these check every syscall number and the arguments each rule looks at,
and how many instructions an ordinary allowed call costs.
"""

from __future__ import annotations

import functools
import itertools
import struct

import pytest

from opaque_knapsack.sandboxes import _confine

ALLOW = 0x7FFF0000
KILL = 0x80000000
EPERM = 0x00050000 | 1
ENOSYS = 0x00050000 | 38
PID = 4321
U32 = 0xFFFFFFFF


@functools.cache
def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("HBBI", program, offset) for offset in range(0, len(program), 8)]


def run(program: bytes, nr: int, args: tuple[int, ...] = (0,) * 6, arch: int = 0xC000003E) -> tuple[int, int]:
    """Run ``program`` on seccomp_data(nr, arch, args); (return value, instructions executed)."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *[a & 0xFFFFFFFFFFFFFFFF for a in args])
    insns = decode(program)
    acc, pc, executed = 0, 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        executed += 1
        pc += 1
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:  # and #k
            acc &= k
        elif code == 0x05:  # ja
            pc += k
        elif code in (0x15, 0x35, 0x45):  # jeq, jge, jset
            taken = acc == k if code == 0x15 else acc >= k if code == 0x35 else bool(acc & k)
            pc += jt if taken else jf
        elif code == 0x06:
            return k, executed
        else:
            raise AssertionError(f"unexpected BPF opcode {code:#x}")


NAMES = {nr: name for name, nr in _confine.NR.items()}


def expected(strict: bool, nr: int, args: tuple[int, ...]) -> int:
    """The policy the filter must enforce, written from the tables, not from the program."""
    low = [a & U32 for a in args]
    name = NAMES.get(nr)
    if nr >= 0x40000000:
        return EPERM
    if name in _confine._ALWAYS_DENIED or (strict and name in _confine._KERNEL_DENIED):
        return EPERM
    own = (0, PID)
    if strict:
        if name == "clone3":
            return ENOSYS
        if name == "clone":
            return ALLOW if low[0] & 0x00010000 else EPERM
        if name in ("kill", "rt_sigqueueinfo"):
            return ALLOW if low[0] in (0, PID, (-PID) & U32) else EPERM
        if name in ("tgkill", "rt_tgsigqueueinfo"):
            return ALLOW if low[0] == PID else EPERM
        if name == "socketpair":
            return ALLOW if low[0] == 1 and low[1] & 0xF == 1 else EPERM
        if name == "sendto":
            return ALLOW if args[4] == 0 else EPERM
        if name == "fcntl":
            return EPERM if low[1] in _confine._FCNTL_DENIED else ALLOW
        if name == "ioctl":
            return EPERM if low[1] in _confine._IOCTL_DENIED else ALLOW
    for rule, pid_arg in _confine._SELF_ONLY:
        if name == rule:
            return ALLOW if low[pid_arg] in own else EPERM
    for rule, which_arg, which, pid_arg in _confine._SELF_ONLY_WHICH:
        if name == rule:
            return ALLOW if low[which_arg] == which and low[pid_arg] in own else EPERM
    if name == "prctl":
        return EPERM if low[0] in ((62, 1) if strict else (62,)) else ALLOW
    return ALLOW


# argument values each rule tells apart, and a few it must not
VALUES = sorted({0, 1, 2, 8, 10, 15, 37, 62, PID, -PID, PID + 1, 0x00010000, 0x00010011, 0x8901, 0x8902, 1 << 32, -1})


@pytest.mark.parametrize("strict", [True, False], ids=["kernel", "command"])
def test_every_syscall_number_gets_the_policy_s_answer(strict: bool) -> None:
    program = _confine._build_filter(strict, PID)
    for nr in list(range(0, 600)) + [0x40000000, 0x40000001, U32 >> 1]:
        if nr in NAMES:  # a syscall with a rule: every pair of interesting values in its first five arguments
            for first, second in itertools.product(VALUES, repeat=2):
                for args in ((first, second, 0, 0, 0, 0), (first, 0, 0, 0, second, 0), (0, first, 0, 0, 0, 0)):
                    assert run(program, nr, args)[0] == expected(strict, nr, args), (NAMES[nr], args)
        else:
            assert run(program, nr, (PID, 1, 2, 3, 4, 5))[0] == expected(strict, nr, ()), nr
    assert run(program, 0, arch=0x40000003)[0] == KILL  # i386


@pytest.mark.parametrize("strict", [True, False], ids=["kernel", "command"])
def test_an_ordinary_call_runs_a_handful_of_instructions(strict: bool) -> None:
    """read, write, getpid, futex, epoll_wait: found by a binary search, not a chain of 90 comparisons."""
    program = _confine._build_filter(strict, PID)
    costs = {nr: run(program, nr)[1] for nr in (0, 1, 39, 202, 232)}
    assert all(result == ALLOW for result, _ in (run(program, nr) for nr in costs))
    assert max(costs.values()) <= 16, costs


def test_a_long_lower_half_is_reached_by_a_long_jump() -> None:
    """jt is one byte: a lower half longer than 255 instructions is skipped with JA."""
    rules = [(nr, [_confine._ins(0x06, 0, 0, EPERM)] + [_confine._ins(0x06, 0, 0, nr)] * 29) for nr in range(0, 40, 2)]
    program = b"".join([_confine._ins(0x20, 0, 0, 0)] + _confine._search(rules))
    assert any(struct.unpack_from("H", program, offset)[0] == 0x05 for offset in range(0, len(program), 8))
    for nr in range(0, 42):
        assert run(program, nr)[0] == (EPERM if nr % 2 == 0 and nr < 40 else ALLOW), nr
