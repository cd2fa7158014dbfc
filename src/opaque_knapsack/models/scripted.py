"""The ``scripted`` model provider: offline policies as Inspect models.

``--model scripted/persistent`` and ``--model scripted/stateless`` run the
policies in :mod:`opaque_knapsack.models.policies`. Given no tools they answer
as CodeAct policies (one Python block per reply); given tools (the ReAct
agent) they answer with native tool calls. Token usage is estimated from the
text they read and write, so cost comparisons between conditions are real.

``-M latency=SECONDS`` makes every reply wait that long (on the event loop, like
a served model's reply), spread by a seeded jitter (``-M jitter=0.25``: up to
25% either way; ``-M seed=N``). The delay of a reply depends only on the seed,
the task statement and the turn, so a run's delays are the same whatever the
concurrency and order of its samples.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
)
from inspect_ai.tool import ToolCall, ToolChoice, ToolInfo

from opaque_knapsack.models.policies import (
    CodeActPolicy,
    Conversation,
    ReactMemory,
    Style,
    TaskFacts,
    estimate_tokens,
    react_next_calls,
    read_facts,
)
from opaque_knapsack.records import RUNTIMES, SCRIPTED_PROVIDER

STYLES: tuple[Style, ...] = RUNTIMES


class ScriptedPolicyAPI(ModelAPI):
    """An Inspect model whose replies come from a scripted policy."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 (the signature Inspect calls providers with; never mutated)
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        if model_name not in STYLES:
            raise ValueError(
                f"Unknown scripted policy '{model_name}': use scripted/persistent or scripted/stateless."
            )
        self.style: Style = model_name  # type: ignore[assignment]
        self.policy = CodeActPolicy(self.style)
        self.latency = _model_arg(model_args, "latency", 0.0, float, lambda v: v >= 0, "a number of seconds >= 0")
        self.jitter = _model_arg(model_args, "jitter", 0.25, float, lambda v: 0 <= v <= 1, "a fraction from 0 to 1")
        self.seed = _model_arg(model_args, "seed", 0, int, lambda v: True, "an integer")
        unknown = sorted(set(model_args) - {"latency", "jitter", "seed"})
        if unknown:
            raise ValueError(f"scripted models take -M latency, jitter and seed, not {', '.join(unknown)}")

    def max_connections(self) -> int:
        return 1000  # no service behind it: never the bottleneck

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        if self.latency > 0:
            await asyncio.sleep(reply_delay(self.latency, self.jitter, self.seed, _reply_key(input)))
        if tools:
            message = self._react_reply(input)
        else:
            message = ChatMessageAssistant(
                content=self.policy.reply(_conversation(input)).text,
                model=f"{SCRIPTED_PROVIDER}/{self.style}",
                source="generate",
            )
        input_tokens = sum(estimate_tokens(m.text) for m in input) + 4 * len(input)
        output_tokens = estimate_tokens(message.text) + sum(
            estimate_tokens(json.dumps(call.arguments)) + 4 for call in message.tool_calls or []
        )
        return ModelOutput(
            model=f"{SCRIPTED_PROVIDER}/{self.style}",
            choices=[
                ChatCompletionChoice(
                    message=message, stop_reason="tool_calls" if message.tool_calls else "stop"
                )
            ],
            usage=ModelUsage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            ),
        )

    def _react_reply(self, input: list[ChatMessage]) -> ChatMessageAssistant:
        facts = _facts(input)
        memory = _react_memory(input)
        calls = react_next_calls(memory, facts, max_calls=min(10, facts.max_tool_calls))
        turn = sum(isinstance(m, ChatMessageAssistant) for m in input)
        return ChatMessageAssistant(
            content=f"Next: {calls[0].function} ({len(calls)} call{'s' if len(calls) > 1 else ''}).",
            tool_calls=[
                ToolCall(id=f"call_{turn}_{index}", function=call.function, arguments=call.arguments)
                for index, call in enumerate(calls)
            ],
            model=f"{SCRIPTED_PROVIDER}/{self.style}",
            source="generate",
        )


def _model_arg(args: dict[str, Any], name: str, default: Any, kind: type, valid: Any, expected: str) -> Any:
    """One ``-M`` argument, checked: a bad value is one line naming it."""
    if name not in args:
        return default
    raw = args[name]
    try:
        if isinstance(raw, bool) or (kind is int and isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        value = kind(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or not valid(value) or value != value:
        raise ValueError(f"-M {name}={raw!r}: expected {expected}")
    return value


def reply_delay(latency: float, jitter: float, seed: int, key: str) -> float:
    """Seconds a reply waits: ``latency`` times 1 +/- ``jitter``, fixed by (seed, key)."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / float(1 << 64)  # [0, 1)
    return latency * (1.0 + jitter * (2.0 * unit - 1.0))


def _reply_key(input: list[ChatMessage]) -> str:
    """The task statement and the turn: what makes a reply's delay the same in every run."""
    task = next((m.text for m in input if isinstance(m, ChatMessageUser)), "")
    turn = sum(isinstance(m, ChatMessageAssistant) for m in input)
    return f"{turn}\0{task}"


def _facts(input: list[ChatMessage]) -> TaskFacts:
    system = "\n".join(m.text for m in input if isinstance(m, ChatMessageSystem))
    task = next((m.text for m in input if isinstance(m, ChatMessageUser)), "")
    return read_facts(system, task)


def _conversation(input: list[ChatMessage]) -> Conversation:
    users = [m.text for m in input if isinstance(m, ChatMessageUser)]
    return Conversation(
        facts=_facts(input),
        turns_taken=sum(isinstance(m, ChatMessageAssistant) for m in input),
        observations=users[1:],
        assistant_texts=[m.text for m in input if isinstance(m, ChatMessageAssistant)],
    )


def _react_memory(input: list[ChatMessage]) -> ReactMemory:
    """Replays the tool results in the conversation into what the policy knows."""
    memory = ReactMemory()
    calls: dict[str, ToolCall] = {}
    for message in input:
        if isinstance(message, ChatMessageAssistant):
            calls.update({call.id: call for call in message.tool_calls or []})
        elif isinstance(message, ChatMessageTool):
            call = calls.get(message.tool_call_id or "")
            if call is None:
                continue
            item_id = call.arguments.get("item_id")
            if message.error is not None:
                text = message.error.message
                if call.function == "inspect":
                    memory.exhausted = True
                elif call.function == "take_item" and "not allowed" in text and item_id in memory.info:
                    memory.forbidden.add(memory.info[item_id]["class"])
                elif call.function == "take_item":
                    memory.skipped.add(item_id)
                continue
            if call.function == "list_items":
                memory.items = json.loads(message.text)
            elif call.function == "inspect":
                memory.info[item_id] = json.loads(message.text)
            elif call.function == "take_item":
                memory.taken.append(item_id)
    return memory
