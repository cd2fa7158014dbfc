"""A kernel's step channel: one step's exchange with its step process.

The harness sends the step's code, serves the host-function calls the code
makes (each counted against the block's limit, recorded within bounds) and
reads frames until the result, all within the step's deadline. Everything the
step process sends is untrusted: frames are size-checked and validated, the
bytes a step may send are bounded, and the event loop is never held for more
than one frame. What ends a step early is ``StepProcessGone`` or ``TimeoutError``;
``Kernel`` (``kernel.py``) turns either into a ``StepResult``.

The step process itself is started, handed out and killed by the control side
(``control.py``).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .launcher import kill_group, kill_pidfd
from .protocol import (
    HEADER,
    ResultMessage,
    StepRequest,
    ToolCallMessage,
    ToolCallRecord,
    ToolReply,
    encode_frame,
    step_message_adapter,
)

FRAME_HEADROOM = 64 * 1024
_STEP_BYTES_FRAMES = 16  # a step may send at most this many maximal frames' worth of bytes
# Call records kept (the rest counted in tool_calls_omitted; see RecordKeeper).
_REFUSED_SAMPLE = 20
_MAX_RECORDS_PER_STEP = 1000
_MAX_RECORD_BYTES = 16 * 1024
_STEP_RECORD_BYTES = 1024 * 1024
_EPISODE_RECORD_BYTES = 16 * 1024 * 1024
_ARGS_SAMPLE_CHARS = 256
# A host function's error text, per call: at most _MAX_RECORD_BYTES of UTF-8 whatever the
# characters, and a reply frame well within the smallest frame limit (ASCII JSON, <= 12 bytes a character).
_MAX_ERROR_CHARS = _MAX_RECORD_BYTES // 4


class StepProcessGone(Exception):
    """The step process ended or broke the protocol mid-step."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass
class StepProcess:
    """A step process as the harness holds it: its channel end and a pidfd."""

    pid: int
    sock: socket.socket
    pidfd: int | None = None
    """From K, opened before K could reap the child: kills never reach a reused pid."""
    buffer: bytearray = field(default_factory=bytearray)
    steps: int = 0
    received: int = 0
    """Bytes read during the current step (bounded: see _STEP_BYTES_FRAMES)."""
    waited: bool = True
    """The last read had to wait for the kernel (so the loop ran other tasks since)."""

    def kill(self) -> None:
        if self.pidfd is not None:
            kill_pidfd(self.pidfd)
        else:
            kill_group(self.pid)

    def close(self) -> None:
        self.sock.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _run_delay(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


class StepDeadline:
    """The harness's deadline for a step: the step's own work, plus a hard ceiling.

    ``limit`` counts wall time minus tool round trips (from the kernel's
    ``sent_at``, clamped) minus the time the step process waited for a CPU;
    ``ceiling`` counts wall time minus the time host functions ran (measured
    here, so a kernel lying about ``sent_at`` cannot stretch it).
    """

    def __init__(self, limit: float, ceiling: float, pid: int) -> None:
        self.limit = limit
        self.ceiling = ceiling
        self.pid = pid
        self.started = time.monotonic()
        self.paused = 0.0
        self.host_time = 0.0
        self.last_answer = self.started
        self.delay0: float | None = None

    def remaining(self) -> float:
        """Seconds until the deadline must be checked again; 0 when the step is out of time."""
        now = time.monotonic()
        active = now - self.started - self.host_time
        if active >= self.ceiling:
            return 0.0
        own = now - self.started - self.paused
        if self.delay0 is None:
            # The CPU-wait baseline is read half way, not at every step's start (a /proc
            # read costs as much as a trivial step): waits in the first half are not credited.
            half = self.limit / 2
            if own < half:
                return half - own
            self.delay0 = _run_delay(self.pid)
        left = self.limit - own
        if left <= 0:  # past the wall budget: time spent waiting for a CPU does not count
            left = self.limit - (own - (_run_delay(self.pid) - self.delay0))
        return max(0.0, min(left, self.ceiling - active))

    def tool_call(self, sent_at: float | None, received: float, answered: float, host_time: float) -> None:
        since = received if sent_at is None else min(max(sent_at, self.last_answer), received)
        self.paused += max(0.0, answered - since)
        self.host_time += host_time
        self.last_answer = answered


def bound_error(text: str, max_chars: int = _MAX_ERROR_CHARS) -> str:
    """A host function's error text within ``max_chars`` characters: its head, and what was cut."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}... [error text cut: {len(text) - max_chars:,} more characters]"


def _text_bytes(text: str | None) -> int:
    return 0 if text is None else len(text.encode("utf-8", "surrogatepass"))


@dataclass
class RecordKeeper:
    """Bounded call records: refused calls beyond a sample are counted, large arguments and errors cut.

    Executed calls each keep a record (their count is exact); the arguments and
    the error text of a call are kept whole only within per-call, per-step and
    per-episode byte bounds. Past a bound a record keeps the head of its
    arguments' JSON text and of its error text.
    """

    episode_budget: list[int]
    records: list[ToolCallRecord] = field(default_factory=list)
    refused_kept: int = 0
    omitted: int = 0
    truncated: int = 0
    step_bytes: int = 0

    def _over(self, cost: int) -> bool:
        return self.step_bytes + cost > _STEP_RECORD_BYTES or self.episode_budget[0] < cost

    def add(self, record: ToolCallRecord, frame_bytes: int, head: bytes, executed: bool) -> None:
        if (not executed and self.refused_kept >= _REFUSED_SAMPLE) or len(self.records) >= _MAX_RECORDS_PER_STEP:
            self.omitted += 1
            return
        error_bytes = _text_bytes(record.error)
        cut = False
        if frame_bytes > _MAX_RECORD_BYTES or self._over(frame_bytes):
            record.args = [head[:_ARGS_SAMPLE_CHARS].decode("utf-8", "replace")]
            record.kwargs = {}
            record.args_truncated = cut = True
            frame_bytes = _ARGS_SAMPLE_CHARS + 64
        if record.error is not None and len(record.error) > _ARGS_SAMPLE_CHARS and self._over(frame_bytes + error_bytes):
            record.error = bound_error(record.error, _ARGS_SAMPLE_CHARS)
            error_bytes = _text_bytes(record.error)
            cut = True
        self.truncated += cut
        cost = frame_bytes + error_bytes
        self.step_bytes += cost
        self.episode_budget[0] -= cost
        if not executed:
            self.refused_kept += 1
        self.records.append(record)


def _escape_surrogates(value: Any) -> Any:
    """Lone surrogates cannot be written as UTF-8 (Inspect's log among others): escape them as text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escape_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    return value


_SMALL_FRAME = 64 * 1024


def parse_frame(payload: bytes) -> ToolCallMessage | ResultMessage:
    """Validate one frame. For a large one the collector is off meanwhile: with it, a frame
    of many small containers costs many times more (the loop is held while a frame is parsed)."""
    if len(payload) <= _SMALL_FRAME:  # the common case: one pass (lone surrogate escapes are refused)
        try:
            return step_message_adapter.validate_json(payload)
        except ValidationError as exc:
            raise StepProcessGone("KernelProtocolError", f"the kernel sent an invalid message: {exc.errors()[0]['msg']}") from None
    enabled = gc.isenabled()
    gc.disable()
    try:
        value = json.loads(payload)
        if b"\\ud" in payload or b"\\uD" in payload:
            value = _escape_surrogates(value)
        return step_message_adapter.validate_python(value)
    except ValidationError as exc:
        raise StepProcessGone("KernelProtocolError", f"the kernel sent an invalid message: {exc.errors()[0]['msg']}") from None
    except (ValueError, RecursionError):
        raise StepProcessGone("KernelProtocolError", "the kernel sent a message that is not JSON") from None
    finally:
        if enabled:
            gc.enable()



class StepChannel:
    """The harness's end of one kernel's step exchanges (its bounds carry over from step to step)."""

    def __init__(self, frame_limit: int) -> None:
        self._frame_limit = frame_limit
        self._record_budget = [_EPISODE_RECORD_BYTES]  # call-record bytes left for this episode

    def records(self) -> RecordKeeper:
        """A fresh step's call records, within what is left of the episode's budget."""
        return RecordKeeper(self._record_budget)

    async def exchange(
        self,
        child: StepProcess,
        request: StepRequest,
        host_functions: Mapping[str, Callable[..., Any]],
        limit: int | None,
        deadline: StepDeadline,
        keeper: RecordKeeper,
    ) -> ResultMessage:
        """Send the step, serve its tool calls until its result; raises StepProcessGone or TimeoutError."""
        child.received = 0
        child.waited = True
        await self._send(child, request, deadline)
        calls = 0
        while True:
            msg, size, head = await self._read_frame(child, deadline)
            if isinstance(msg, ResultMessage):
                return msg
            received = time.monotonic()
            if deadline.remaining() <= 0:  # frames kept coming: the deadline holds all the same
                raise TimeoutError
            record, reply, executed = await self._call_host(msg, host_functions, calls + 1, limit)
            answered = time.monotonic()
            deadline.tool_call(msg.sent_at, received, answered, answered - received if executed else 0.0)
            calls += 1
            keeper.add(record, size, head, executed)
            # Drop the parsed frame before the loop runs anything else: a large one
            # kept alive into the collector's older generations makes full collections
            # of the whole harness heap (seconds, measured) out of the kernel's garbage.
            del msg, record
            await self._send(child, reply, deadline)



    async def _wait_io(self, sock: socket.socket, deadline: StepDeadline, write: bool = False) -> None:
        """Wait until ``sock`` is readable (or writable), within the step's deadline."""
        loop = asyncio.get_running_loop()
        fd = sock.fileno()
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise TimeoutError
            fut: asyncio.Future[bool] = loop.create_future()

            def ready(timed_out: bool = False, fut: asyncio.Future[bool] = fut) -> None:
                if not fut.done():
                    fut.set_result(timed_out)

            (loop.add_writer if write else loop.add_reader)(fd, ready)
            timer = loop.call_later(remaining, ready, True)  # lighter than asyncio.timeout, on every wait
            try:
                if not await fut:
                    return
                # timed out: re-check (time waiting for a CPU may not count)
            finally:
                timer.cancel()
                (loop.remove_writer if write else loop.remove_reader)(fd)

    async def _read_frame(self, child: StepProcess, deadline: StepDeadline) -> tuple[ToolCallMessage | ResultMessage, int, bytes]:
        """The next frame (validated), its size and its first bytes.

        Never holds the loop for more than one frame: when frames keep coming
        (no wait on the socket since the last one), it yields before the next.
        """
        buf = child.buffer
        limit = self._frame_limit
        while True:
            if len(buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(buf)
                if size > limit:
                    raise StepProcessGone("KernelProtocolError", f"the kernel sent a {size}-byte message (limit {limit})")
                end = HEADER.size + size
                if len(buf) >= end:
                    payload = bytes(buf[HEADER.size : end])
                    del buf[:end]
                    if not child.waited:
                        await asyncio.sleep(0)
                    child.waited = False
                    return parse_frame(payload), size, payload
            try:
                chunk = child.sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                await self._wait_io(child.sock, deadline)
                child.waited = True
                continue
            except OSError as exc:
                raise StepProcessGone("KernelCrash", f"kernel channel failed: {exc}") from None
            if not chunk:
                raise StepProcessGone("KernelCrash", "the kernel process died")
            child.received += len(chunk)
            if child.received > _STEP_BYTES_FRAMES * limit:
                raise StepProcessGone(
                    "KernelProtocolError", f"the kernel sent more than {_STEP_BYTES_FRAMES * limit} bytes in one step"
                )
            buf += chunk

    async def _send(self, child: StepProcess, message: StepRequest | ToolReply, deadline: StepDeadline) -> None:
        data = memoryview(encode_frame(message))
        while data:
            try:
                sent = child.sock.send(data)
            except (BlockingIOError, InterruptedError):
                await self._wait_io(child.sock, deadline, write=True)
                continue
            except OSError as exc:
                raise StepProcessGone("KernelCrash", f"the kernel process died ({exc.strerror})") from None
            data = data[sent:]

    async def _call_host(
        self,
        call: ToolCallMessage,
        host_functions: Mapping[str, Callable[..., Any]],
        calls_made: int,
        limit: int | None,
    ) -> tuple[ToolCallRecord, ToolReply, bool]:
        """Run one host function for the kernel: its record, the reply, whether it was called."""
        record = ToolCallRecord(name=call.name, args=call.args, kwargs=call.kwargs)
        fn = host_functions.get(call.name)
        reply = ToolReply(id=call.id, ok=False)
        if fn is None:
            reply.error = record.error = f"unknown tool {call.name!r}"
            return record, reply, False
        if limit is not None and calls_made > limit:
            reply.limit = record.limit = True
            reply.error = record.error = (
                f"tool call limit reached: at most {limit} tool calls per code block; {call.name}() was not called"
            )
            return record, reply, False
        try:
            value = fn(*call.args, **call.kwargs)
            if inspect.isawaitable(value):
                value = await value
            json.dumps(value)
        except Exception as exc:  # any host failure becomes the agent's ToolError
            # Bounded per call in the reply and the record alike (a message may quote an argument).
            reply.error = record.error = bound_error(str(exc) or type(exc).__name__)
        else:
            reply.ok = True
            reply.value = record.result = value
        return record, reply, True


