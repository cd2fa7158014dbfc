"""Export of what a reply holds: signed (Gemini) thoughts."""

from __future__ import annotations

import json
from pathlib import Path

from fake_knapsack import hand_built_log
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    ContentReasoning,
    ContentText,
)

from opaque_knapsack.train.export import export_traces

SIGNATURE = "CpcBAdHtim9+c2lnbmF0dXJlLW9mLWEtdGhvdWdodA=="
THOUGHT = "The budget covers twelve items; inspect the light ones first."
CODE = "```python\nprint(list_items())\n```"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def episode(*replies: ChatMessageAssistant, steps: list[dict] | None = None) -> tuple[list, list[dict]]:
    """System, task, then each reply followed by an observation (the last one ends the conversation)."""
    messages = [ChatMessageSystem(content="You are a CodeAct agent."), ChatMessageUser(content="Solve it.")]
    for index, reply in enumerate(replies):
        if index:
            messages.append(ChatMessageUser(content=f"Observation: step {index}"))
        messages.append(reply)
    return messages, steps or []


def text_reply(text: str = CODE, *reasoning: ContentReasoning) -> ChatMessageAssistant:
    return ChatMessageAssistant(content=[*reasoning, ContentText(text=text)])


def test_a_signed_thought_exports_its_text_and_never_the_signature(fixture_logs, tmp_path):
    signed = ContentReasoning(reasoning=SIGNATURE, summary=THOUGHT, redacted=True)
    plain = ContentReasoning(reasoning="Plain reasoning, no signature.")
    anchor = ContentReasoning(reasoning="", redacted=True)  # a signature-only block: nothing readable
    log = hand_built_log(
        fixture_logs.persistent,
        tmp_path / "gemini.eval",
        [episode(text_reply(CODE, signed), text_reply("Done.", plain), text_reply("Finished.", anchor))],
    )
    out = tmp_path / "traces.jsonl"
    export_traces([log], out)
    [record] = lines(out)
    assistant = [message for message in record["messages"] if message["role"] == "assistant"]
    assert assistant[0] == {"role": "assistant", "content": CODE, "reasoning_content": THOUGHT}
    # unredacted reasoning keeps the form it had: the same field, the reasoning text itself
    assert assistant[1] == {"role": "assistant", "content": "Done.", "reasoning_content": "Plain reasoning, no signature."}
    assert assistant[2] == {"role": "assistant", "content": "Finished."}
    assert SIGNATURE not in out.read_text()


def test_several_thoughts_of_one_reply_are_joined_in_order():
    from opaque_knapsack.train.conversation import training_messages

    first = ContentReasoning(reasoning=SIGNATURE, summary="First thought.", redacted=True)
    second = ContentReasoning(reasoning="Second thought.")
    [*_, reply] = training_messages([ChatMessageUser(content="go"), text_reply(CODE, first, second)])
    assert reply["reasoning_content"] == "First thought.\nSecond thought."
