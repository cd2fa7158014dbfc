"""How long an exported conversation is, and the paper's cut of an over-long one.

Axolotl drops a conversation longer than its ``sequence_len`` tokens without a
word (its default ``excess_length_strategy``), and the longest episodes, most
of them the stateless runtime's, would vanish from one arm of the study. The
paper's training conversion cuts a conversation at 57,344 characters and keeps
its start; export does the same by default.

Characters: a message's ``content``, its reasoning and the names and arguments
of its tool calls, the text a chat template renders without its own markup.

The cut: whole messages are kept from the start while their characters add up
to at most the limit, and the conversation then ends on the last assistant
turn among them. No message is cut inside its text: a reply broken off in the
middle of its code, closed by the template's end-of-turn token, would teach a
student to stop there, and ending on an assistant turn keeps every line a
valid ``chat_template`` sample. A conversation whose first assistant turn
alone goes past the limit cannot be cut so; export drops it as ``too_long``.

Tokens: with a base model's tokenizer (``transformers`` importable, the
tokenizer on local disk), a conversation's tokens are those its chat template
gives, as Axolotl counts them; otherwise they are estimated at 3.5 characters
per token, the ratio of the paper's 57,344-character cut to its 16,384-token
sequence length. ``TokenCounter.method`` says which, for the summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opaque_knapsack.train.axolotl_config import AxolotlConfig
from opaque_knapsack.train.conversation import REASONING_FIELD, TOOL_CALLS_FIELD

PAPER_CUT_CHARACTERS = 57_344
"""Where the paper's training conversion cuts a conversation (its start kept)."""
PAPER_SEQUENCE_LEN: int = AxolotlConfig.model_fields["sequence_len"].default
CHARACTERS_PER_TOKEN = PAPER_CUT_CHARACTERS / PAPER_SEQUENCE_LEN
"""The estimate without a tokenizer: the paper's cut spread over its sequence length (3.5)."""

Message = Mapping[str, Any]
"""An exported message in OpenAI form (``train.conversation.training_messages``)."""


@dataclass(frozen=True)
class Cut:
    """A conversation after the cut, and what the cut removed from its end."""

    messages: list[Message]
    removed_messages: int = 0
    removed_characters: int = 0


def message_characters(message: Message) -> int:
    calls = message.get(TOOL_CALLS_FIELD) or []
    spoken = len(message.get("content") or "") + len(message.get(REASONING_FIELD) or "")
    return spoken + sum(len(call["function"]["name"]) + len(call["function"]["arguments"]) for call in calls)


def conversation_characters(messages: Sequence[Message]) -> int:
    return sum(message_characters(message) for message in messages)


def cut_conversation(messages: Sequence[Message], limit: int) -> Cut | None:
    """The longest start of MESSAGES within LIMIT characters that ends on an assistant turn.

    LIMIT 0 keeps the conversation whole. None when not even the first
    assistant turn fits.
    """
    if limit <= 0:
        return Cut(list(messages))
    total = 0
    end: int | None = None  # just past the last assistant turn that fits
    for index, message in enumerate(messages):
        total += message_characters(message)
        if total > limit:
            break
        if message["role"] == "assistant":
            end = index + 1
    else:
        return Cut(list(messages))
    if end is None:
        return None
    return Cut(list(messages[:end]), len(messages) - end, conversation_characters(messages[end:]))


@dataclass(frozen=True)
class TokenCounter:
    """Counts a conversation's tokens the way ``method`` says (a tokenizer, or the estimate)."""

    method: str
    tokenizer: Any = None

    def count(self, messages: Sequence[Message], tools: Sequence[Message] | None = None) -> int:
        if self.tokenizer is None:
            return math.ceil(conversation_characters(messages) / CHARACTERS_PER_TOKEN)
        ids = self.tokenizer.apply_chat_template(
            list(messages), tools=list(tools) if tools else None, tokenize=True, return_dict=False
        )
        return len(ids)


def token_counter(base_model: str | None) -> TokenCounter:
    """The base model's tokenizer with its chat template when it is on local disk, else the estimate.

    Nothing is downloaded: export stays an offline step, and the summary says
    why it fell back to the estimate.
    """
    estimate = f"estimated at {CHARACTERS_PER_TOKEN:g} characters per token"
    if base_model is None:
        return TokenCounter(f"{estimate} (no base model given)")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return TokenCounter(f"{estimate} (transformers is not installed)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    except Exception as error:  # noqa: BLE001 - whatever the reason, there is no local tokenizer to use
        return TokenCounter(f"{estimate} (no local tokenizer for {base_model}: {type(error).__name__})")
    if not getattr(tokenizer, "chat_template", None):
        return TokenCounter(f"{estimate} (the {base_model} tokenizer has no chat template)")
    return TokenCounter(f"the {base_model} tokenizer's chat template", tokenizer)
