"""An episode's limits, with the paper's values: the one place each default is written.

The task's ``-T`` options, the agents' arguments and a runtime's sandbox
config (``RuntimeConfig``) each set a limit only when the user gave one; a
limit nobody set is the value here. The runtime's config starts from these
values and the options the user set override it, in that order, so a
``step_timeout`` in ``--sandbox persistent_python:config.yaml`` holds unless
``-T step_timeout=...`` says otherwise.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EpisodeLimits(BaseModel):
    """How long an episode may run and what one step of it may do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_turns: int = Field(default=40, ge=1)
    """Assistant replies per episode."""
    max_tool_calls: int = Field(default=25, ge=0)
    """Tool calls per code block (per reply for ReAct); calls beyond it are refused."""
    step_timeout: float = Field(default=30.0, gt=0)
    """Wall-time limit of one code block, in seconds."""

    def updated(
        self, *, max_turns: int | None = None, max_tool_calls: int | None = None, step_timeout: float | None = None
    ) -> EpisodeLimits:
        """These limits with the ones a user set (None: not set, the value here stays)."""
        given = {"max_turns": max_turns, "max_tool_calls": max_tool_calls, "step_timeout": step_timeout}
        return EpisodeLimits.model_validate({**self.model_dump(), **{k: v for k, v in given.items() if v is not None}})


PAPER_LIMITS = EpisodeLimits()
"""The paper's limits: the defaults above."""
