"""What both ends of the kernel's channels agree on, written once.

Imported by the kernel process (``_kernel.py`` runs as a plain script, so it
reads this file as the top-level module ``_wire``, next to it) and by the
harness (``protocol.py``, ``kernel.py``, ``launcher.py``, as
``opaque_knapsack.sandboxes._wire``). Standard library only, and nothing of the
harness: the kernel imports it before it has seen anything sample-specific.

The message models themselves are pydantic, in ``protocol.py`` (the harness
validates everything the kernel sends); ``tests/sandboxes/test_wire.py`` checks
that their ``type``/``op`` literals and fields match what ``_kernel.py`` sends
and reads.
"""

from __future__ import annotations

import struct

FRAME_HEADER = struct.Struct(">I")
"""Step channel frame header: payload length, 4-byte big-endian, then UTF-8 JSON."""

# Step channel, kernel -> harness: the ``type`` of each message.
TOOL_CALL = "tool_call"
RESULT = "result"
# Step channel, harness -> kernel: the ``op`` of each message.
STEP = "step"
TOOL_RESULT = "tool_result"
# Control socket, kernel -> harness: the ``type`` of each message.
READY = "ready"
EXIT = "exit"

ZYGOTE_REQUEST = struct.Struct(">I")
"""A kernel start request on the zygote's channel: request id, then the kernel's JSON start-up message."""
ZYGOTE_REPLY = struct.Struct(">Ii")
"""The zygote's answer: request id, the kernel's pid (or -errno); a pidfd rides along (SCM_RIGHTS)."""
MAX_ZYGOTE_REQUEST = 1 << 16
"""The zygote's request buffer: a larger start-up message is refused by the harness."""

WORKDIR_NAME = "work"
"""The kernel's working directory inside its container (a directory the harness makes per
kernel; the kernel's code never sees the container itself where namespaces allow)."""
RETIRED_PREFIX = ".retired-"
"""A stateless step's working directory, renamed inside the container once its step
process is gone, before it is deleted: the next step gets a fresh directory."""

EXEC_ERROR_MARKER = "opaque-knapsack-exec-error errno="
"""Written to stderr by ``_kernel.py exec`` when the command cannot be executed."""


def cap_names(names: list[str], limit: int) -> tuple[list[str], int]:
    """The leading names that fit in ``limit`` characters (2 more per name), and how many did not.

    Applied by the kernel to the globals it sends and again by the harness to
    what it received (the kernel is untrusted): one rule, so both agree.
    """
    if sum(len(name) + 2 for name in names) <= limit:
        return names, 0
    kept: list[str] = []
    used = 0
    for name in names:
        used += len(name) + 2
        if used > limit:
            break
        kept.append(name)
    return kept, len(names) - len(kept)
