"""The runtimes' state for the whole harness process, all of it in one place.

Everything the Python runtimes keep beyond one object's life is an attribute
of ``REGISTRY``; no other module holds state of its own:

- ``kernels``: the live kernels, by ``id``. At interpreter exit they are killed
  with the zygote (the ``atexit`` hook below), as ``kill_all_kernels()`` and a
  task's cleanup do;
- ``starting``: kernels whose background start (``sample_init``) is under way,
  with the task that starts each;
- ``uids_in_use`` and ``uid_sequence``: the private uids handed to kernels,
  one each while it lives (``control._allocate_uid``);
- ``zygote``: the harness's handle on its zygote, which forks every kernel
  (made on first use; its process starts with the first kernel);
- ``launch_stats``: how long kernel launches, starts and first waits took;
- ``episodes``: each sample's live episode, by the key written into its store
  (the agents' tools find theirs there);
- ``tunables``: the few limits the launcher and the step channel work within.

A fork of the harness (a fork-started worker) forgets it all: the parent's
kernels and zygote are not its own, and it starts its own if it needs them.

Tests call ``reset()`` for a fresh state, and change a tunable with
``monkeypatch.setattr(REGISTRY.tunables, name, value)``.
"""

from __future__ import annotations

import atexit
import itertools
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from .kernel import Kernel
    from .launcher import Zygote


@dataclass
class LaunchStats:
    """Seconds from each kernel start request to the zygote's answer (queue wait included)."""

    launches: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    starts: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    """Seconds from a sample's kernel start to its first step process being ready (``sample_init``)."""

    waits: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    """Seconds a sample's first code block waited for its kernel to be ready."""

    def clear(self) -> None:
        self.launches.clear()
        self.starts.clear()
        self.waits.clear()


@dataclass
class Tunables:
    """Limits the runtime machinery works within (not the agent's: see ``RuntimeConfig``)."""

    launch_window: int = 256
    """Kernel start requests on the zygote's channel (or waiting to fit in it) at
    once; the rest wait in the harness's queue."""
    zygote_stall_timeout: float = 60.0
    """Seconds after which a live zygote that answers nothing and uses no CPU is stuck."""
    episode_record_bytes: int = 16 * 1024 * 1024
    """Bytes of tool-call records one kernel keeps over its life (beyond them, calls are
    counted, not recorded)."""


class Registry:
    """The runtimes' process-wide state (see the module docstring)."""

    def __init__(self) -> None:
        self.kernels: dict[int, Kernel] = {}
        self.starting: dict[int, tuple[Kernel, asyncio.Task[None]]] = {}
        self.uids_in_use: set[int] = set()
        self.uid_sequence: Iterator[int] = itertools.count()
        self.launch_stats = LaunchStats()
        self.episodes: dict[str, Any] = {}
        self.tunables = Tunables()
        self._zygote: Zygote | None = None

    @property
    def zygote(self) -> Zygote:
        """The harness's zygote handle, made on first use."""
        if self._zygote is None:
            from .launcher import Zygote

            self._zygote = Zygote()
        return self._zygote

    def forget(self) -> None:
        """Drop everything without touching a process (in a fork of the harness)."""
        if self._zygote is not None:
            self._zygote.forget()
        self.__init__()  # type: ignore[misc]

    def reset(self) -> None:
        """For tests: kill every live kernel and the zygote (waiting briefly), then start
        from a fresh state: no kernels, uids, episodes or launch figures, default tunables."""
        if self.kernels or self._zygote is not None:
            from .kernel import kill_all_kernels

            kill_all_kernels()
        self.__init__()  # type: ignore[misc]


REGISTRY = Registry()


def _kill_at_exit() -> None:
    if REGISTRY.kernels or (REGISTRY._zygote is not None and REGISTRY._zygote.pid is not None):
        from .kernel import kill_all_kernels

        kill_all_kernels()


atexit.register(_kill_at_exit)
os.register_at_fork(after_in_child=REGISTRY.forget)
