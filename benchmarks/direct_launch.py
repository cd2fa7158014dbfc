"""The baseline kernel launch: a fresh interpreter per kernel, as the runtime once started them.

Not shipped: the runtime forks every kernel from its zygote (see
``opaque_knapsack/sandboxes/launcher.py``). Benchmarks pass ``DirectLauncher()``
as ``Kernel(..., launcher=...)`` to measure what the zygote saves (an
interpreter start plus imports per kernel, and a ``fork_exec`` that blocks the
event loop's thread), and the zygote's tests compare a forked kernel with one
started this way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

from opaque_knapsack.sandboxes.launcher import KERNEL_SCRIPT, LaunchedKernel


class DirectLauncher:
    """``python -S -s _kernel.py kernel <cfg>`` per kernel, a child of the harness."""

    name = "direct"

    async def launch(self, start: dict[str, Any], control: socket.socket) -> LaunchedKernel:
        cfg = dict(start["cfg"], control_fd=control.fileno())
        proc = subprocess.Popen(  # blocks the calling thread (the event loop's) in fork_exec
            [sys.executable, "-S", "-s", KERNEL_SCRIPT, "kernel", json.dumps(cfg)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=start["cwd"],
            env=start["env"],
            pass_fds=(control.fileno(),),
            process_group=0,
        )
        return LaunchedKernel(proc.pid, os.pidfd_open(proc.pid), proc)
