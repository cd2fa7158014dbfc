"""The harness's side of a kernel: start it, run code blocks in it, stop it.

A ``Kernel`` owns one kernel process (see ``_kernel.py`` for the layout), its
working directory and its private uid. It composes two parts:

- its control channel (``control.KernelControl``): the kernel process's life,
  forked by the harness's zygote (see ``launcher.py``), its identity and
  limits, its step processes, a restart when it dies, the kill;
- its step channel (``step_channel.StepChannel``): one step's exchange with the
  current step process, its host-function calls and its deadline.

Every wait on the kernel has a deadline, every frame a size limit, every
message is validated; whatever the agent's code does to its channel, the
harness sees a ``StepResult``. All live kernels are in ``registry.REGISTRY``,
killed (with the zygote) at interpreter exit, by ``kill_all_kernels()`` and on
every cleanup path of the providers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from opaque_knapsack.records import RuntimeSemantics

from ._wire import cap_names
from .config import RuntimeConfig
from .control import (
    WORKDIR_PREFIX,
    KernelControl,
    KernelError,
    Protection,
    bury,
    describe_status,
    existing_paths,
    probe_protection,
    python_paths,
)
from .launcher import KERNEL_SCRIPT, ZYGOTE_LAUNCHER, KernelLauncher, kernel_env, wait_pidfds
from .protocol import ResultMessage, StepError, StepRequest, StepResult, ToolSpec
from .registry import REGISTRY
from .step_channel import FRAME_HEADROOM, RecordKeeper, StepChannel, StepDeadline, StepProcess, StepProcessGone

__all__ = [
    "KERNEL_SCRIPT",
    "WORKDIR_PREFIX",
    "Kernel",
    "KernelError",
    "Protection",
    "existing_paths",
    "kernel_env",
    "kill_all_kernels",
    "live_kernels",
    "probe_protection",
    "python_paths",
    "stop_zygote_if_idle",
]

logger = logging.getLogger(__name__)

_TIMEOUT_GRACE = 1.0

def kill_all_kernels(wait: float = 2.0) -> int:
    """Kill every kernel this process started, and the zygote (cancel, Ctrl+C, interpreter exit).

    Blocks (at most ``wait`` seconds) until they are gone: not for the event loop's common path.
    """
    kernels = list(REGISTRY.kernels.values())
    zygote = REGISTRY.zygote
    for kernel in kernels:
        kernel.kill()
    zygote.stop()
    dying = [kernel.control.dying for kernel in kernels]
    wait_pidfds([pidfd for entries in dying for pidfd, _ in entries], wait)
    for entries in dying:
        bury(entries)
    zygote.wait_stopped(wait)
    return len(kernels)


async def stop_zygote_if_idle() -> bool:
    """Stop the zygote when no kernel is alive (a task's cleanup); the next kernel restarts it."""
    if REGISTRY.kernels:
        return False
    await REGISTRY.zygote.stop_and_wait()
    return True


def live_kernels() -> list[Kernel]:
    return list(REGISTRY.kernels.values())


class Kernel:
    """One sample's kernel: a kernel process plus its current step process.

    Kernel processes are forked by the harness's zygote; ``launcher`` is a seam
    for benchmarks, which measure their baseline through it (see
    ``launcher.KernelLauncher``).
    """

    def __init__(
        self,
        semantics: RuntimeSemantics,
        config: RuntimeConfig,
        workdir: str | None = None,
        launcher: KernelLauncher = ZYGOTE_LAUNCHER,
    ) -> None:
        self.semantics = semantics
        self.task_name: str | None = None
        self.control = KernelControl(
            semantics, config, workdir, launcher,
            on_start=lambda: REGISTRY.kernels.__setitem__(id(self), self),
            on_kill=lambda: REGISTRY.kernels.pop(id(self), None),
        )
        self.steps = StepChannel(max(config.max_message_bytes, 8 * config.max_output_chars + FRAME_HEADROOM))
        self._lock = asyncio.Lock()
        self._step_counter = 0
        self._closed = False

    # ---- the kernel process (control channel: config, workdir, uid, pid, ... are ``control``'s) ----

    async def start(self) -> None:
        # A kernel forked just before its zygote died dies with it before it is
        # ready: one more start from the fresh zygote, then a clear error.
        for attempt in range(2):
            if not self.control.started:
                await self.control.spawn()
            try:
                await self.control.acquire_child()
                return
            except KernelError:
                if attempt:
                    raise
                self.kill()

    def kill(self) -> None:
        """Kill the kernel and its step processes now (synchronous, never waits; safe to repeat)."""
        self.control.kill()

    async def close(self) -> None:
        self._closed = True
        await self.control.close()

    # ---- running code (step channel) ----------------------------------------------------

    async def run_code(
        self,
        code: str,
        host_functions: Mapping[str, Callable[..., Any]] | None = None,
        *,
        max_tool_calls: int | None = None,
        timeout: float | None = None,
    ) -> StepResult:
        """Run one block; whatever the agent's code does, the answer is a ``StepResult``."""
        if self._closed:
            raise KernelError("the runtime was cleaned up")
        async with self._lock:
            return await self._run(code, dict(host_functions or {}), max_tool_calls, timeout)

    async def _run(
        self, code: str, host_functions: dict[str, Callable[..., Any]], max_tool_calls: int | None, timeout: float | None
    ) -> StepResult:
        control = self.control
        config = control.config
        step_timeout = float(timeout if timeout is not None else config.step_timeout)
        limit = max_tool_calls if max_tool_calls is not None else config.max_tool_calls
        persistent = self.semantics.persists_state
        try:
            child, lost = await control.begin_step()
        except (KernelError, TimeoutError, OSError) as exc:
            return self._unavailable_result(exc, persistent)
        self._step_counter += 1
        request = StepRequest(
            step=self._step_counter,
            code=code,
            tools=[ToolSpec(name=name, doc=inspect.getdoc(fn)) for name, fn in host_functions.items()],
            timeout=step_timeout,
            max_output_chars=config.max_output_chars,
        )
        keeper = self.steps.records()
        limit_s = step_timeout + max(_TIMEOUT_GRACE, 0.1 * step_timeout)
        deadline = StepDeadline(limit_s, limit_s * config.step_ceiling_factor, child)
        started = time.perf_counter()
        try:
            msg = await self.steps.exchange(child, request, host_functions, limit, deadline, keeper)
            if persistent:  # until its next step: what the step left running burns no CPU meanwhile
                child.stop_soon(group=not control.protection.seccomp)
        except (StepProcessGone, TimeoutError) as exc:
            wall = time.perf_counter() - started
            return await self._fault_result(child, exc, keeper, wall, step_timeout, persistent)
        except BaseException:
            control.abandon_step(child)  # cancelled (or the harness failed) mid-step
            raise
        wall = time.perf_counter() - started
        control.end_step(child, lost)
        return self._result(msg, keeper, wall, lost and persistent)

    def _unavailable_result(self, exc: BaseException, persistent: bool) -> StepResult:
        message = f"the runtime could not run this step: {exc}"
        return StepResult(
            stdout=_RESTART_NOTE if persistent else "",
            error=StepError(type="KernelError", message=message, traceback=f"KernelError: {message}\n"),
            globals=[] if persistent else None,
            kernel_restarted=persistent,
        )

    def _result(self, msg: ResultMessage, keeper: RecordKeeper, wall: float, restarted: bool) -> StepResult:
        cap = self.control.config.max_output_chars
        stdout, truncated = _cap(msg.stdout, cap)
        truncated = truncated or msg.truncated_chars > 0
        error = msg.error
        if error is not None:  # the kernel is untrusted: bound its error text as well
            error = StepError(
                type=_cap(error.type, 200)[0], message=_cap(error.message, cap)[0], traceback=_cap(error.traceback, cap)[0]
            )
        if restarted:
            stdout = _RESTART_NOTE + stdout
        persistent = self.semantics.persists_state
        names, omitted = _cap_globals(msg.globals, cap) if persistent else (None, 0)
        _log_records(self._step_counter, keeper)
        return StepResult(
            stdout=stdout,
            error=error,
            is_name_error=msg.is_name_error and error is not None,
            undefined_name=_cap(msg.undefined_name, 200)[0] if msg.undefined_name and error is not None else None,
            tool_calls=keeper.records,
            wall_time=wall,
            globals=names,
            # untrusted like the rest of the frame: capped as the globals are
            bound_at_start=(_cap_globals(msg.bound_at_start, cap)[0] or []) if persistent else [],
            timed_out=msg.timed_out,
            kernel_restarted=restarted,
            output_truncated=truncated,
            tool_calls_omitted=keeper.omitted,
            globals_omitted=omitted + msg.globals_omitted,
        )

    async def _fault_result(
        self,
        child: StepProcess,
        exc: Exception,
        keeper: RecordKeeper,
        wall: float,
        step_timeout: float,
        persistent: bool,
    ) -> StepResult:
        status = await self.control.fault_step(child)
        timed_out = isinstance(exc, TimeoutError)
        if timed_out:
            kind = "StepTimeout"
            detail = f"step exceeded the {step_timeout:g} s time limit and was killed"
        else:
            assert isinstance(exc, StepProcessGone)
            kind, detail = exc.kind, exc.detail
            if status is not None and kind == "KernelCrash":
                detail += f" ({describe_status(status)})"
        restarted = persistent  # the step process held the state: killing it lost everything
        _log_records(self._step_counter, keeper)
        return StepResult(
            stdout=_RESTART_NOTE if restarted else "",
            error=StepError(type=kind, message=detail, traceback=f"{kind}: {detail}\n"),
            is_name_error=False,
            tool_calls=keeper.records,
            wall_time=wall,
            globals=[] if persistent else None,
            timed_out=timed_out,
            kernel_restarted=restarted,
            tool_calls_omitted=keeper.omitted,
        )


def _cap(text: str, cap: int) -> tuple[str, bool]:
    """Head and tail of ``text`` within about ``cap`` characters (+ a marker).

    (Lone surrogates cannot be here: ``parse_frame`` refuses or escapes them.)"""
    if len(text) > cap + 200:
        cut = len(text) - cap
        return f"{text[: cap // 2]}\n... [output truncated: {cut} characters cut] ...\n{text[-(cap - cap // 2):]}", True
    return text, False


def _cap_globals(names: list[str] | None, cap: int) -> tuple[list[str], int]:
    """The kernel's own rule (``_wire.cap_names``), applied again: the kernel is untrusted."""
    return ([], 0) if names is None else cap_names(names, cap)


def _log_records(step: int, keeper: RecordKeeper) -> None:
    if keeper.omitted or keeper.truncated:
        logger.warning(
            "step %d: %d tool call records left out (counted in tool_calls_omitted) and %d with truncated "
            "arguments, to bound the harness's memory",
            step, keeper.omitted, keeper.truncated,
        )


_RESTART_NOTE = "[kernel restarted: all previous state (variables, imports, definitions) was lost]\n"
"""The one announcement of a restart: the first line of the result's stdout, with
``kernel_restarted=True``; neither the error nor the agent repeats it."""
