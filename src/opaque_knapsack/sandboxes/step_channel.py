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
import select
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import ValidationError

from ._clock import StepClock, next_check, process_cpu, process_cpu_clock
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
from .registry import REGISTRY

FRAME_HEADROOM = 64 * 1024
_STEP_BYTES_FRAMES = 16  # a step may send at most this many maximal frames' worth of bytes
# Call records kept (the rest counted in tool_calls_omitted; see RecordKeeper).
_REFUSED_SAMPLE = 20
_MAX_RECORDS_PER_STEP = 1000
_MAX_RECORD_BYTES = 16 * 1024
_STEP_RECORD_BYTES = 1024 * 1024  # the episode's bound: registry.Tunables.episode_record_bytes
_ARGS_SAMPLE_CHARS = 256
_MAX_ERROR_CHARS = 2048
"""A host function's error message is cut to this many characters (head and tail) before it goes
anywhere: the reply to the kernel (so the step's ToolError, its traceback and the observation), and
the call record, where it also counts against the per-step and per-episode record budgets."""
_MAX_NAME_CHARS = 128


STOP_AFTER = 0.001
"""Seconds after a persistent step's end within which its step process is stopped (``StepProcess.stop_soon``)."""


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

    stopped: bool = False
    """Stopped (SIGSTOP) between two steps of a persistent kernel: see ``stop``."""
    group: bool = True
    """``stop`` and ``resume`` signal its process group as well."""
    schedstat_fd: int = -1
    """``/proc/<pid>/schedstat``, opened for the step clock on the first step (-1: not yet, or none)."""
    clock: StepClock | None = None
    """The harness's reading of its step clock, made on the first step (see ``step_clock``)."""
    between_steps: bool = False
    """A persistent step ended and the next has not begun (``stop_soon``, ``resume``)."""
    _stop_group: bool = True
    _stop_handle: asyncio.TimerHandle | None = None
    """The timer of a pending ``stop_soon``."""
    _poller: select.poll | None = None
    """Polls the pidfd (see ``ended``)."""
    _loop: asyncio.AbstractEventLoop | None = None
    """The event loop of the kernel's steps (``stop_soon`` schedules on it, ``watch`` watches on it)."""
    _waiter: asyncio.Future[bool] | None = None
    _watched: bool = False
    _echo: bool = False

    def kill(self) -> None:
        self._cancel_stop()
        if self.pidfd is not None:
            kill_pidfd(self.pidfd)
        else:
            kill_group(self.pid)

    def stop(self, group: bool = True) -> None:
        """Stop the step process, every thread of it, and (``group``) its process group, until ``resume``.

        Threads a persistent step leaves running (or, without seccomp, child
        processes) would burn CPU while no step runs, where no clock counts it;
        stopped, they burn none, and they run again, on the next step's clock,
        when it begins. ``group=False`` where seccomp denies new processes: the
        process is all there is.
        """
        self.group = group or self.pidfd is None
        self.stopped = self._signal(signal.SIGSTOP)

    def stop_soon(self, group: bool = True) -> None:
        """A persistent step ended: ``stop`` the process within ``STOP_AFTER`` seconds,
        unless its next step has begun by then.

        Until the stop, what its threads burn counts toward its next step: its step
        clock counts from this moment on (``StepClock.idle``). One timer serves
        every step that ends while it is pending, so steps that follow each other
        closely cost one timer per ``STOP_AFTER``, and no signals (the timer finds
        a step running, and stops nothing).
        """
        if self.clock is not None:
            self.clock.idle()
        self.between_steps = True
        self._stop_group = group
        if self._stop_handle is None:
            self._stop_handle = self.loop().call_later(STOP_AFTER, self._stop_if_between)

    def _stop_if_between(self) -> None:
        self._stop_handle = None
        if self.between_steps and not self.stopped:
            self.stop(self._stop_group)

    def resume(self) -> None:
        """Let the process run again for its next step (a pending stop finds it busy)."""
        self.between_steps = False
        if self.stopped:
            self._signal(signal.SIGCONT)
            self.stopped = False

    def _cancel_stop(self) -> None:
        if self._stop_handle is not None:
            self._stop_handle.cancel()
            self._stop_handle = None

    def _signal(self, sig: int) -> bool:
        """``sig`` to the step process (through its pidfd: never a reused pid), then to its group."""
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, sig)
            except OSError:
                return False
            if not self.group:
                return True
        try:
            os.killpg(self.pid, sig)
        except OSError:
            return self.pidfd is not None
        return True

    def schedstat(self) -> int:
        if self.schedstat_fd < 0:
            try:
                self.schedstat_fd = os.open(f"/proc/{self.pid}/schedstat", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self.schedstat_fd = -1
        return self.schedstat_fd

    def ended(self) -> bool:
        """Whether the process has ended (its pidfd is readable); False where there is no pidfd."""
        if self.pidfd is None:
            return False
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.pidfd, select.POLLIN)
        return bool(self._poller.poll(0))

    def step_clock(self) -> StepClock:
        """The step clock of this process as the harness reads it (one for all its steps)."""
        if self.clock is None:
            self.clock = StepClock(partial(process_cpu, process_cpu_clock(self.pid)), self.schedstat())
        return self.clock

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running event loop, asked for once (each asking is a getpid() call)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def watch(self, waiter: asyncio.Future[bool]) -> None:
        """Set ``waiter``'s result (False) once the channel is readable.

        The socket stays registered with the event loop from one wait to the
        next: adding and removing it at every wait cost two epoll_ctl calls and
        the selector's bookkeeping on every step and every tool call. It is
        removed when nobody waits as it turns readable (else the loop would spin
        on it) and when the channel closes.
        """
        self._waiter = waiter
        if not self._watched:
            self.loop().add_reader(self.sock.fileno(), self._readable)
            self._watched = True

    def _readable(self) -> None:
        if self._echo:
            # The loop polls again before the woken waiter has read what woke it, and
            # reports the same data once more: that report is not new data.
            self._echo = False
            return
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            self._unwatch()  # nobody waits: a level-triggered report would come every turn
            return
        waiter.set_result(False)
        self._echo = True

    def unwatched(self) -> None:
        """A wait ended: what wakes the loop from now on is not for it (a timer ended it, or it was cancelled)."""
        self._waiter = None

    def _unwatch(self) -> None:
        self._echo = False
        if self._watched:
            self._watched = False
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self.sock.fileno())

    def close_channel(self) -> None:
        """Close the channel end and the schedstat descriptor (the pidfd stays, for awaiting its end)."""
        self._cancel_stop()  # the pidfd's number may be another process's once it is closed
        self._unwatch()
        self.sock.close()
        if self.schedstat_fd >= 0:
            os.close(self.schedstat_fd)
            self.schedstat_fd = -1
        self.clock = None

    def close(self) -> None:
        self.close_channel()
        if self.pidfd is not None:
            self._poller = None
            os.close(self.pidfd)
            self.pidfd = None


_WALL_CAP_FACTOR = 8
_WALL_CAP_MIN = 300.0
"""The absolute wall cap of a step: ``_WALL_CAP_FACTOR`` times its hard ceiling, at least
``_WALL_CAP_MIN`` seconds (a short limit must not turn heavy load into a kill)."""


class StepDeadline:
    """The harness's deadline for a step: the step's time as ``_clock`` defines it, plus a hard ceiling.

    - ``limit`` (the kernel's limit plus a grace) is on the step's clock, read
      exactly as the kernel reads it, so the kernel's ``StepTimeout`` always
      comes first and this kill is the backstop;
    - ``ceiling`` is on the same clock but credits only the time host functions
      ran as measured here (the kernel's ``sent_at`` is not trusted for it);
    - ``wall_cap`` (``_WALL_CAP_FACTOR`` times the ceiling, at least
      ``_WALL_CAP_MIN``) is on wall time less that host time alone: a step
      starved of any CPU for that long ends too.

    The clock is read only when its time could have run out: between readings
    it cannot grow faster than ``_clock.CPUS`` seconds per second.
    """

    def __init__(self, limit: float, ceiling: float, child: StepProcess) -> None:
        self.limit = limit
        self.ceiling = ceiling
        self.wall_cap = max(ceiling * _WALL_CAP_FACTOR, _WALL_CAP_MIN)
        self.clock = child.step_clock()
        self.clock.start(limit)
        self.started = self.clock.started
        self.host_time = 0.0
        self.last_answer = self.started
        self._next = self.started + next_check(limit)

    def remaining(self) -> float:
        """Seconds until the deadline must be checked again; 0 when the step is out of time."""
        now = time.monotonic()
        if now < self._next:
            return self._next - now
        wall, cpu, waited = self.clock.read(now)
        left = self.limit - max(cpu, wall - self.clock.paused - waited)
        ceiling_left = self.ceiling - max(cpu, wall - self.host_time - waited)
        cap_left = self.wall_cap - (wall - self.host_time)
        if min(left, ceiling_left, cap_left) <= 0:
            return 0.0
        wait = min(next_check(min(left, ceiling_left)), cap_left)
        self._next = now + wait
        return wait

    def tool_call(self, sent_at: float | None, received: float, answered: float, host_time: float) -> None:
        since = received if sent_at is None else min(max(sent_at, self.last_answer), received)
        self.clock.pause(since, answered, answered)
        self.host_time += host_time
        self.last_answer = answered


@dataclass
class RecordKeeper:
    """Bounded call records: refused calls beyond a sample are counted, large arguments and errors cut.

    Refused calls cost no memory past a sample of them, however many a step
    makes. Executed calls each keep a record (their count is exact); their
    arguments and error text are kept whole only within per-call, per-step and
    per-episode byte bounds, past which a record keeps the head of each.
    """

    episode_budget: list[int]
    records: list[ToolCallRecord] = field(default_factory=list)
    refused_kept: int = 0
    omitted: int = 0
    truncated: int = 0
    step_bytes: int = 0

    def add(self, record: ToolCallRecord, frame_bytes: int, head: bytes, executed: bool) -> None:
        if (not executed and self.refused_kept >= _REFUSED_SAMPLE) or len(self.records) >= _MAX_RECORDS_PER_STEP:
            self.omitted += 1
            return
        error_chars = len(record.error or "")
        cost = frame_bytes + error_chars
        if (
            frame_bytes > _MAX_RECORD_BYTES
            or self.step_bytes + cost > _STEP_RECORD_BYTES
            or self.episode_budget[0] < cost
        ):
            record.args = [head[:_ARGS_SAMPLE_CHARS].decode("utf-8", "replace")]
            record.kwargs = {}
            record.args_truncated = True
            record.name = bound_text(record.name, _MAX_NAME_CHARS)
            if record.error is not None:
                record.error = bound_text(record.error, _ARGS_SAMPLE_CHARS)
            cost = _ARGS_SAMPLE_CHARS * 2 + 64
            self.truncated += 1
        self.step_bytes += cost
        self.episode_budget[0] -= cost
        if not executed:
            self.refused_kept += 1
        self.records.append(record)


def bound_text(text: str, limit: int) -> str:
    """``text`` whole when it fits in ``limit`` characters, else its head and tail around a count of what was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 48, 2)
    head, tail = text[: keep // 2], text[len(text) - keep // 2 :]
    return f"{head} ... [{len(text) - 2 * (keep // 2)} characters cut] ... {tail}"


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



def _time_out(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(True)


class StepChannel:
    """The harness's end of one kernel's step exchanges (its bounds carry over from step to step)."""

    def __init__(self, frame_limit: int) -> None:
        self._frame_limit = frame_limit
        self._record_budget = [REGISTRY.tunables.episode_record_bytes]  # call-record bytes left for this episode

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
        # A stopped step process (persistent, between steps) resumes once the step is
        # in its socket: one wake-up, not one for SIGCONT and one for the data.
        await self._send(child, request, deadline, before_wait=child.resume)
        child.resume()
        calls = 0
        while True:
            msg, size, head = await self._read_frame(child, deadline)
            if isinstance(msg, ResultMessage):
                return msg
            received = time.monotonic()
            if deadline.remaining() <= 0:  # frames kept coming: the deadline holds all the same
                raise TimeoutError
            record, reply, executed = await self._call_host(msg, host_functions, calls + 1, limit)
            answered = reply.answered_at = time.monotonic()
            deadline.tool_call(msg.sent_at, received, answered, answered - received if executed else 0.0)
            calls += 1
            keeper.add(record, size, head, executed)
            # Drop the parsed frame before the loop runs anything else: a large one
            # kept alive into the collector's older generations makes full collections
            # of the whole harness heap (seconds, measured) out of the kernel's garbage.
            del msg, record
            await self._send(child, reply, deadline)



    async def _wait_readable(self, child: StepProcess, deadline: StepDeadline) -> None:
        """Wait until the step process's channel is readable, within the step's deadline."""
        loop = child.loop()
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise TimeoutError
            fut: asyncio.Future[bool] = loop.create_future()
            child.watch(fut)
            timer = loop.call_later(remaining, _time_out, fut)
            try:
                if not await fut:
                    return
                # timed out: re-check (time waiting for a CPU may not count)
            finally:
                timer.cancel()
                child.unwatched()

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
                await self._wait_readable(child, deadline)
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

    async def _send(
        self,
        child: StepProcess,
        message: StepRequest | ToolReply,
        deadline: StepDeadline,
        before_wait: Callable[[], None] | None = None,
    ) -> None:
        """Send one frame; ``before_wait`` is called before waiting for room in the socket."""
        data = memoryview(encode_frame(message))
        while data:
            try:
                sent = child.sock.send(data)
            except (BlockingIOError, InterruptedError):
                if before_wait is not None:
                    before_wait()
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
            reply.error = record.error = f"unknown tool {bound_text(repr(call.name), _MAX_NAME_CHARS)}"
            return record, reply, False
        if limit is not None and calls_made > limit:
            reply.limit = record.limit = True
            reply.error = record.error = (
                f"tool call limit reached: at most {limit} tool calls per code block; {bound_text(call.name, _MAX_NAME_CHARS)}() was not called"
            )
            return record, reply, False
        try:
            value = fn(*call.args, **call.kwargs)
            if inspect.isawaitable(value):
                value = await value
            json.dumps(value)
        except Exception as exc:  # any host failure becomes the agent's ToolError
            reply.error = record.error = bound_text(str(exc) or type(exc).__name__, _MAX_ERROR_CHARS)
        else:
            reply.ok = True
            reply.value = record.result = value
        return record, reply, True


