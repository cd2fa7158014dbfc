"""Fixtures for the runtime tests: kernels that are always cleaned up, leftover checks."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable

import psutil
import pytest

import opaque_knapsack.sandboxes  # noqa: F401  (registers the providers)
from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.sandboxes import Kernel, RuntimeConfig
from opaque_knapsack.sandboxes.kernel import KERNEL_SCRIPT


def _our_processes() -> list[tuple[psutil.Process, bool]]:
    """(process, is a zygote) for every live process this test process started through the runtime.

    Kernels forked by the zygote share its command line; the zygote is the one
    whose parent is this process.
    """
    found = []
    for proc in psutil.process_iter(["cmdline", "status", "ppid"]):
        cmdline = proc.info.get("cmdline") or []
        if KERNEL_SCRIPT not in cmdline or proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        index = cmdline.index(KERNEL_SCRIPT)
        try:
            cfg = json.loads(cmdline[index + 2])
        except (ValueError, IndexError):
            continue
        if cfg.get("harness_pid") == os.getpid():
            zygote = cmdline[index + 1] == "zygote" and proc.info.get("ppid") == os.getpid()
            found.append((proc, zygote))
    return found


def kernel_processes() -> list[psutil.Process]:
    """Kernel and step processes started by this test process that are still alive (not the zygote)."""
    return [proc for proc, zygote in _our_processes() if not zygote]


def zygote_processes() -> list[psutil.Process]:
    """Zygotes of this test process that are still alive (at most one, between tests)."""
    return [proc for proc, zygote in _our_processes() if zygote]


KernelFactory = Callable[..., "Kernel"]


@pytest.fixture
async def make_kernel() -> AsyncIterator[Callable[..., object]]:
    kernels: list[Kernel] = []

    async def make(runtime: str = "persistent", **config: object) -> Kernel:
        settings = RuntimeConfig(**config)  # type: ignore[arg-type]
        kernel = Kernel(settings.semantics(SEMANTICS[runtime]), settings)  # type: ignore[index]
        kernels.append(kernel)
        await kernel.start()
        return kernel

    yield make
    for kernel in kernels:
        await kernel.close()


@pytest.fixture(params=["persistent", "stateless"])
async def kernel(request: pytest.FixtureRequest, make_kernel) -> Kernel:  # type: ignore[no-untyped-def]
    return await make_kernel(request.param, step_timeout=5)
