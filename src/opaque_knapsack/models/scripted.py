"""The ``scripted`` model provider: offline policies as Inspect models.

``--model scripted/persistent`` and ``--model scripted/stateless`` run the
scripted policies of the task family whose sample they play (the family of
the sample's live episode; outside a sample, ``-M family=NAME``): the knapsack
ones are in :mod:`opaque_knapsack.knapsack.policies`. Given no tools they
answer as CodeAct policies (one Python block per reply); given tools (the
ReAct agent) they answer with native tool calls. Token usage is estimated from
the text they read and write, so cost comparisons between conditions are real.

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
    ChatMessageUser,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
)
from inspect_ai.tool import ToolCall, ToolChoice, ToolInfo

from opaque_knapsack.families import ScriptedPolicies, TaskFamily
from opaque_knapsack.records import RUNTIMES, SCRIPTED_PROVIDER, Runtime

STYLES: tuple[Runtime, ...] = RUNTIMES
MODEL_ARGS = ("latency", "jitter", "seed", "family")


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
        self.style: Runtime = model_name  # type: ignore[assignment]
        self.latency = _model_arg(model_args, "latency", 0.0, float, lambda v: v >= 0, "a number of seconds >= 0")
        self.jitter = _model_arg(model_args, "jitter", 0.25, float, lambda v: 0 <= v <= 1, "a fraction from 0 to 1")
        self.seed = _model_arg(model_args, "seed", 0, int, lambda v: True, "an integer")
        self.family = _family_arg(model_args.get("family"))
        unknown = sorted(set(model_args) - set(MODEL_ARGS))
        if unknown:
            raise ValueError(f"scripted models take -M {', '.join(MODEL_ARGS)}, not {', '.join(unknown)}")

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
        policies = self._policies()
        if tools:
            message = self._react_reply(policies, input)
        else:
            message = ChatMessageAssistant(
                content=policies.codeact_reply(self.style, input),
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

    def _policies(self) -> ScriptedPolicies:
        """The scripted policies of the family this model plays: ``-M family``, else its sample's episode's."""
        if self.family is not None:
            return self.family.scripted_policies()
        from opaque_knapsack.solvers.episode import live_episode

        try:
            family = live_episode().family
        except RuntimeError:
            raise ValueError(
                "scripted models play a sample of a task family's task; outside one, name the family "
                "with -M family=NAME"
            ) from None
        return family.scripted_policies()

    def _react_reply(self, policies: ScriptedPolicies, input: list[ChatMessage]) -> ChatMessageAssistant:
        calls = policies.react_calls(self.style, input)
        turn = sum(isinstance(m, ChatMessageAssistant) for m in input)
        return ChatMessageAssistant(
            content=f"Next: {calls[0][0]} ({len(calls)} call{'s' if len(calls) > 1 else ''}).",
            tool_calls=[
                ToolCall(id=f"call_{turn}_{index}", function=function, arguments=arguments)
                for index, (function, arguments) in enumerate(calls)
            ],
            model=f"{SCRIPTED_PROVIDER}/{self.style}",
            source="generate",
        )


def _family_arg(name: object) -> TaskFamily | None:
    """The family ``-M family=NAME`` names, if given (a name that is not registered is one line)."""
    if name is None:
        return None
    from opaque_knapsack.families import task_family

    return task_family(str(name), flag="-M family")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token."""
    return max(1, (len(text) + 3) // 4) if text else 0


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
