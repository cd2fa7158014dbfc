"""What crosses the kernel boundary: step results and the kernel's channel messages.

Everything the kernel sends is untrusted (the agent's code may write anything
on its channel), so each frame is size-checked and validated by these models
before the harness acts on it; a frame that fails is a protocol violation that
ends the step process, never an exception inside the harness.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ._wire import FRAME_HEADER as HEADER

# The ``type``/``op`` literals below are the names in ``_wire``, spelt out for
# the type checker; tests/sandboxes/test_wire.py keeps them equal.


class StepError(BaseModel):
    """The exception a step raised (or the fault that ended it)."""

    type: str
    """Exception class name, e.g. ``NameError``; ``StepTimeout``, ``KernelCrash``,
    ``KernelProtocolError`` for faults the runtime reports."""
    message: str
    traceback: str
    """Formatted like Python does, restricted to the user's frames."""


class ToolCallRecord(BaseModel):
    """One host-function call made by the step's code."""

    name: str
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    result: Any | None = None
    error: str | None = None
    """The message the agent's ``ToolError`` carried, when the call failed."""
    limit: bool = False
    """The harness refused the call for exceeding the code block's tool-call
    limit: the host function was never called (the code saw ``ToolCallLimitError``)."""
    args_truncated: bool = False
    """The call's arguments were too large to keep (per call, step or episode
    bounds): ``args`` holds the head of their JSON text instead, ``kwargs`` is empty."""


class StepResult(BaseModel):
    """What running one code block produced."""

    stdout: str = ""
    """print output and stderr writes; with ``RuntimeConfig.echo_last_expression``,
    then the repr of a bare final expression (unless it is None), as a notebook
    cell shows it."""
    error: StepError | None = None
    is_name_error: bool = False
    """The step raised NameError (UnboundLocalError included: it is a subclass)."""
    undefined_name: str | None = None
    """The name a NameError could not find, as the kernel read it from the
    exception (``NameError.name``); None when Python gives none (UnboundLocalError,
    a NameError the code raised itself) or for any other outcome."""
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    wall_time: float = 0.0
    """Seconds, measured by the harness from sending the step to its result."""
    globals: list[str] | None = None
    """Persistent runtime only: the user's global names as the paper's list shows
    them, sorted: imported modules, names starting with ``__``, injected tool
    stubs and untouched pre-bound modules left out; names bound to ``None`` kept."""
    bound_at_start: list[str] | None = None
    """The user's global names bound in the interpreter when the step started and
    mentioned in its code, sorted: what the runtime could serve from earlier
    steps, whatever the value (``None`` and imported modules included; only
    dunders, tool stubs and untouched pre-bound modules left out). Always empty
    in the stateless runtime; None when the step process died before reporting."""
    timed_out: bool = False
    kernel_restarted: bool = False
    """Persistent runtime only: the interpreter was replaced and all state is gone."""
    output_truncated: bool = False
    tool_calls_omitted: int = 0
    """Tool calls made but not kept in ``tool_calls`` (refused calls beyond a
    sample, or records past the step's or episode's bounds); counted, never lost silently."""
    globals_omitted: int = 0
    """Persistent runtime: global names left out of ``globals`` to keep it within
    ``max_output_chars`` characters."""


# ---- kernel -> harness -------------------------------------------------------


class _KernelMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCallMessage(_KernelMessage):
    type: Literal["tool_call"]
    id: int
    name: str = Field(max_length=200)
    args: list[Any]
    kwargs: dict[str, Any]
    sent_at: float | None = None
    """The kernel's CLOCK_MONOTONIC when it sent the call (the step's clock stops
    from then until the answer); untrusted, clamped by the harness."""


class ResultMessage(_KernelMessage):
    type: Literal["result"]
    stdout: str
    error: StepError | None
    is_name_error: bool
    undefined_name: str | None = None
    globals: list[str] | None
    bound_at_start: list[str] = Field(default_factory=list)
    timed_out: bool
    truncated_chars: int = Field(ge=0)
    globals_omitted: int = Field(default=0, ge=0)


StepChannelMessage = Annotated[ToolCallMessage | ResultMessage, Field(discriminator="type")]
step_message_adapter: TypeAdapter[ToolCallMessage | ResultMessage] = TypeAdapter(StepChannelMessage)


class ExitStatus(_KernelMessage):
    code: int | None = None
    signal: int | None = None


class ReadyMessage(_KernelMessage):
    type: Literal["ready"]
    pid: int


class ExitMessage(_KernelMessage):
    type: Literal["exit"]
    pid: int
    status: ExitStatus


ControlMessage = Annotated[ReadyMessage | ExitMessage, Field(discriminator="type")]
control_message_adapter: TypeAdapter[ReadyMessage | ExitMessage] = TypeAdapter(ControlMessage)


# ---- harness -> kernel ---------------------------------------------------------


class ToolSpec(BaseModel):
    name: str
    doc: str | None = None


class StepRequest(BaseModel):
    op: Literal["step"] = "step"
    step: int
    code: str
    tools: list[ToolSpec]
    timeout: float
    max_output_chars: int


class ToolReply(BaseModel):
    op: Literal["tool_result"] = "tool_result"
    id: int
    ok: bool
    value: Any = None
    error: str | None = None
    limit: bool = False
    answered_at: float | None = None
    """When the harness sent this answer (``time.monotonic()``): the step clock's pause ends there, on both sides."""


def encode_frame(message: BaseModel | dict[str, Any]) -> bytes:
    payload = message.model_dump() if isinstance(message, BaseModel) else message
    # ASCII JSON: a lone surrogate in the model's code travels as an escape the kernel reads back.
    data = json.dumps(payload).encode("ascii")
    return HEADER.pack(len(data)) + data
