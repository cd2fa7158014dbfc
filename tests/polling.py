"""Waiting on a condition instead of sleeping a fixed time.

The suite runs on loaded shared machines: a fixed sleep is either too short
there (a flaky test) or too long everywhere else. These poll a condition with
a generous deadline and return as soon as it holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEADLINE_S = 30.0


def wait_until(condition: Callable[[], object], timeout: float = DEADLINE_S, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` passes; whether it became true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


async def async_wait_until(
    condition: Callable[[], object], timeout: float = DEADLINE_S, interval: float = 0.05
) -> bool:
    """``wait_until`` for a test on the event loop: sleeps between polls without blocking it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True
