"""One episode's messages as one training conversation.

The CodeAct agent shows the model a conversation that only ever grows (no
hidden or transient messages), so the sample's final ``messages`` list is
exactly what the model saw at its last turn, and every earlier turn saw a
prefix of it. Converting it is therefore a pure mapping, message by message:

- system, user and assistant text go through unchanged (``ChatMessage.text``,
  the text parts);
- an assistant turn's reasoning (a provider's ``reasoning_content``) goes in
  the message's ``reasoning_content`` field, the field Axolotl's
  ``chat_template`` datasets read by default (``field_thinking``), so a chat
  template that renders reasoning trains on what the model produced; it is
  never dropped, and never merged into the content. A redacted block (a
  signed Gemini thought, encrypted reasoning) holds a signature or an opaque
  blob in ``reasoning``, never exported; its readable text, when the provider
  gave one, is the block's ``summary``, exported the same way;
- ReAct episodes keep their native tool calls in the OpenAI form that
  Axolotl's ``chat_template`` datasets accept: assistant ``tool_calls``
  (``{"id", "type": "function", "function": {"name", "arguments"}}`` with the
  arguments as a JSON string) and ``tool`` messages with ``tool_call_id``,
  ``name`` and ``content`` (a tool error reads ``"Error: <message>"``, as
  Inspect's OpenAI-compatible providers render it to the model);
- trailing messages after the last assistant turn are dropped, so every
  conversation ends on a turn the model produced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    ContentReasoning,
)

TraceFormat = Literal["openai", "sharegpt"]

REASONING_FIELD = "reasoning_content"
"""Where an assistant turn's reasoning goes: Axolotl's default ``field_thinking``."""
TOOL_CALLS_FIELD = "tool_calls"
"""An assistant turn's native tool calls, in the OpenAI chat form."""

# ShareGPT speaker names, as Axolotl's default role mapping reads them.
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


class ConversationError(ValueError):
    """An episode that cannot become a training conversation."""


def training_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI-format messages of one episode, ending on its last assistant turn."""
    converted = [_convert(message) for message in messages]
    last_assistant = max(
        (index for index, message in enumerate(converted) if message["role"] == "assistant"),
        default=None,
    )
    if last_assistant is None:
        raise ConversationError("the episode has no assistant turn")
    return converted[: last_assistant + 1]


def to_sharegpt(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same conversation as ShareGPT turns (``from``/``value``).

    Tool-call fields ride along unchanged; ShareGPT has no standard for them.
    """
    turns = []
    for message in messages:
        turn: dict[str, Any] = {"from": SHAREGPT_ROLES[message["role"]], "value": message["content"]}
        turn.update({key: value for key, value in message.items() if key not in ("role", "content")})
        turns.append(turn)
    return turns


def _convert(message: ChatMessage) -> dict[str, Any]:
    if isinstance(message, ChatMessageSystem):
        return {"role": "system", "content": message.text}
    if isinstance(message, ChatMessageUser):
        return {"role": "user", "content": message.text}
    if isinstance(message, ChatMessageAssistant):
        converted: dict[str, Any] = {"role": "assistant", "content": message.text}
        reasoning = reasoning_text(message)
        if reasoning:
            converted[REASONING_FIELD] = reasoning
        if message.tool_calls:
            converted[TOOL_CALLS_FIELD] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.function,
                        "arguments": json.dumps(call.arguments, sort_keys=True),
                    },
                }
                for call in message.tool_calls
            ]
        return converted
    if isinstance(message, ChatMessageTool):
        content = f"Error: {message.error.message}" if message.error else message.text
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "name": message.function or "",
            "content": content,
        }
    raise ConversationError(f"unsupported message role {message.role!r}")


def reasoning_text(message: ChatMessageAssistant) -> str:
    """The readable reasoning of an assistant turn, one block per line.

    Inspect keeps a thought that came with a signature (Gemini) as a redacted
    block: the signature in ``reasoning``, the thought text in ``summary``.
    The signature means nothing to a student and is never exported; the text is.
    """
    if isinstance(message.content, str):
        return ""
    blocks = (_readable(part) for part in message.content if isinstance(part, ContentReasoning))
    return "\n".join(text for text in blocks if text)


def _readable(block: ContentReasoning) -> str:
    return (block.summary or "") if block.redacted else block.reasoning


def tool_definitions(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Inspect ``ToolInfo`` objects as OpenAI function definitions (Axolotl's ``tools`` field)."""
    return [
        {
            "type": "function",
            "function": {
                "name": info.name,
                "description": info.description,
                "parameters": info.parameters.model_dump(exclude_none=True),
            },
        }
        for info in tools
    ]
