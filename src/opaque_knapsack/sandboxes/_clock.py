"""A step's time: one definition, read the same way by the step process and by the harness.

Imported by the kernel (``_kernel.py`` runs as a plain script and reads this
file as the top-level module ``_clock``, next to it) and by the harness
(``step_channel.py``, as ``opaque_knapsack.sandboxes._clock``). Standard
library only.

A step's time, from the moment the step begins::

    used = max(cpu, wall - paused - waited)

- ``cpu``: CPU time of the step process, in all its threads (those that have
  ended too), plus, in the kernel, its child processes it has reaped (a
  confined step process cannot make any: seccomp denies fork; without seccomp
  the harness's copy of the clock counts the step process alone, so it is
  never the stricter one). In a persistent process it counts from the end of
  the previous step (``StepClock.idle``): what threads a step left running burn
  before the harness stops the process (within a turn of its event loop, or
  never in back-to-back steps) counts toward the next step;
- ``wall``: monotonic time;
- ``paused``: the harness's time on the step's tool calls, each from the call's
  ``sent_at`` (stamped by the step process as it sends the call) to the
  reply's ``answered_at`` (stamped by the harness as it sends the answer).
  Calls go one at a time, so no moment is paused twice. The harness does not
  trust ``sent_at`` beyond its last answer and the moment the call arrived;
- ``waited``: the time the step process's main thread was runnable but
  waiting for a CPU (the second field of ``/proc/<pid>/schedstat``).

The CPU term bounds the CPU a step burns however many threads it runs: 16
busy threads on 2 cores reach a 2 s limit after about 1 s. The wall term
bounds a step that sleeps or blocks; it credits the harness's time and the
main thread's waits for a CPU, so neither a busy harness nor a loaded machine
turns into a ``StepTimeout``. The one part of the step this credit cannot see
is a main thread that is blocked (``join``) while other threads of the step
wait for a CPU: that wait counts (only the main thread's schedstat is open to
a confined step process).

Both sides compute exactly this, from the same instants: the kernel raises
``StepTimeout`` when ``used`` reaches the limit; the harness kills the step
process when its own reading reaches the limit plus a grace, so the soft
timeout (state kept) always comes first. Neither reading can grow faster
than one second per second in the wall term, nor than ``CPUS`` seconds per
second in the CPU term, which bounds how long a check may sleep
(``next_check``).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

CPUS = max(1, os.cpu_count() or 1)
"""CPUs the machine has online, read once at import (the kernel's zygote imports this
before a private root hides /sys): how many CPU-seconds a step can use per second."""

# Private copies, as in the kernel: the user's code may rebind these module attributes.
_monotonic, _process_time, _clock_gettime = time.monotonic, time.process_time, time.clock_gettime
_getrusage, _RUSAGE_CHILDREN = resource.getrusage, resource.RUSAGE_CHILDREN
_pread = os.pread
_CPUCLOCK_SCHED = 2


def next_check(remaining: float) -> float:
    """Wall seconds the step's time cannot reach its limit in, ``remaining`` seconds of it away
    (the CPU term grows at most ``CPUS`` times as fast as the wall): when to look again."""
    return max(remaining / CPUS, 0.001)


def self_cpu() -> float:
    """CPU seconds of the calling process: all its threads, and the children it has reaped."""
    children = _getrusage(_RUSAGE_CHILDREN)
    return _process_time() + children.ru_utime + children.ru_stime


own_threads_cpu = _process_time
"""CPU seconds of the calling process, all its threads: ``self_cpu`` where it can have no
children (seccomp denies a confined step process fork), one system call instead of two."""


def process_cpu_clock(pid: int) -> int:
    """The clock id of process ``pid``'s CPU time, all threads (what ``clock_getcpuclockid`` gives)."""
    return ((~pid) << 3) | _CPUCLOCK_SCHED


def process_cpu(clock_id: int) -> float | None:
    """CPU seconds on a ``process_cpu_clock``; None once the process is gone."""
    try:
        return _clock_gettime(clock_id)
    except OSError:
        return None


def run_delay(schedstat_fd: int) -> float | None:
    """Seconds the thread behind an open ``/proc/.../schedstat`` has waited for a CPU; None if unreadable."""
    if schedstat_fd < 0:
        return None
    try:
        return int(_pread(schedstat_fd, 128, 0).split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class StepClock:
    """One step's time (see the module's docstring), from readers of its CPU and its waits.

    ``read_cpu`` gives the step process's CPU seconds (None when unreadable);
    ``schedstat_fd`` is an open ``/proc/<pid>/schedstat`` of its main thread
    (-1: no credit for waiting). A reading that fails keeps the last good one.
    """

    def __init__(self, read_cpu: Callable[[], float | None], schedstat_fd: int = -1) -> None:
        self.read_cpu = read_cpu
        self.schedstat_fd = schedstat_fd
        self.limit = 0.0
        self.started = 0.0
        self.paused = 0.0
        self.call_sent: float | None = None
        """``sent_at`` of a tool call still in flight (the step process's side only)."""
        self._cpu0 = self._cpu = 0.0
        self._waited0 = self._waited = 0.0
        self._idle_cpu: float | None = None

    def _read_cpu(self) -> float:
        cpu = self.read_cpu()
        if cpu is not None:
            self._cpu = cpu
        return self._cpu

    def _read_waited(self) -> float:
        if self.schedstat_fd >= 0:  # run_delay, inline: read at every step's start
            try:
                self._waited = int(_pread(self.schedstat_fd, 128, 0).split()[1]) / 1e9
            except (OSError, ValueError, IndexError):
                pass  # a failed reading keeps the last good one (see the class's docstring)
        return self._waited

    def _read(self) -> tuple[float, float]:
        return self._read_cpu(), self._read_waited()

    def idle(self) -> None:
        """A step of a persistent process ended: the CPU it burns from now on (threads the
        step left running, until the harness stops them) counts toward its next step."""
        self._idle_cpu = self.read_cpu()

    def start(self, limit: float) -> None:
        self.limit = limit
        self.paused = 0.0
        self.call_sent = None
        idle_cpu, self._idle_cpu = self._idle_cpu, None
        self._cpu0 = self._read_cpu() if idle_cpu is None else idle_cpu
        self._waited0 = self._read_waited()
        self.started = _monotonic()

    def pause(self, sent_at: float, answered_at: float | None, now: float | None = None) -> None:
        """A tool call ended: the harness's time on it, ``sent_at`` to ``answered_at``, is not the step's."""
        now = _monotonic() if now is None else now
        answered = now if answered_at is None else min(max(answered_at, sent_at), now)
        self.paused += max(0.0, answered - sent_at)
        self.call_sent = None

    def read(self, now: float | None = None) -> tuple[float, float, float]:
        """(wall, cpu, waited) since the step began."""
        now = _monotonic() if now is None else now
        cpu, waited = self._read()
        return now - self.started, max(0.0, cpu - self._cpu0), max(0.0, waited - self._waited0)

    def used(self, now: float | None = None) -> float:
        """The step's time so far: ``max(cpu, wall - paused - waited)``."""
        now = _monotonic() if now is None else now
        wall, cpu, waited = self.read(now)
        paused = self.paused
        if self.call_sent is not None:
            paused += max(0.0, now - self.call_sent)
        return max(cpu, wall - paused - waited)

    def remaining(self) -> float:
        return self.limit - self.used()
