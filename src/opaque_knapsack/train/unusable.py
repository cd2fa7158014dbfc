"""Assistant turns with no usable text, which a student must not be trained on.

A reply the provider stopped for safety, one with empty parts, a prompt the
provider blocked (Inspect writes ``BLOCKED: <reason>`` as the reply's text) and
a reply cut by the token limit after only thinking all end up as assistant
turns of the conversation when they are kept in it, and a student trained on
them learns to answer with nothing. Two sources say a turn is unusable:

- the step records, from the version that records each reply's stop reason:
  a reply that did not end normally (``UNFINISHED``) and was still kept in the
  conversation (not ``cut_off``; with ``-T cut_off=run`` such replies run and
  stay);
- the message itself, for every log: no text and no tool call (kind
  ``only_reasoning`` when it holds thinking, ``empty`` when not), or the
  ``BLOCKED:`` text (kind ``blocked``).

A reply that was cut off and replaced by the agent's "ended unexpectedly"
message is not in the conversation, so it is no unusable turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from inspect_ai.model import ChatMessage, ChatMessageAssistant

from opaque_knapsack.train.conversation import reasoning_text

# The StepRecord fields this module reads, named here once (import them from
# records.py once it names them). Logs written before the step records carried
# them lack them, so they are read with ``.get``.
STOP_REASON_FIELD = "stop_reason"
CUT_OFF_FIELD = "cut_off"

UNFINISHED: tuple[str, ...] = ("max_tokens", "model_length", "content_filter")
"""Inspect stop reasons of a reply that did not end normally (``stop``,
``tool_calls``, and ``unknown`` from providers that do not say, are normal)."""

BLOCKED_PREFIX = "BLOCKED:"
"""How Inspect's Google provider writes the text of a reply to a blocked prompt."""


def unusable_kinds(messages: Sequence[ChatMessage], steps: Iterable[Mapping[str, Any]]) -> list[str]:
    """The kinds of unusable turn an episode holds, sorted, each once (empty: none)."""
    kinds = {kind for message in messages if (kind := _message_kind(message)) is not None}
    kinds.update(kind for step in steps if (kind := _step_kind(step)) is not None)
    return sorted(kinds)


def _message_kind(message: ChatMessage) -> str | None:
    if not isinstance(message, ChatMessageAssistant):
        return None
    text = message.text.strip()
    if text.startswith(BLOCKED_PREFIX):
        return "blocked"
    if text or message.tool_calls:
        return None
    return "only_reasoning" if reasoning_text(message).strip() else "empty"


def _step_kind(step: Mapping[str, Any]) -> str | None:
    if not isinstance(step, Mapping) or step.get(CUT_OFF_FIELD):
        return None
    reason = step.get(STOP_REASON_FIELD)
    return str(reason) if reason in UNFINISHED else None
