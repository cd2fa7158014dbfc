"""Export of what a reply holds: signed (Gemini) thoughts, and turns with no usable text."""

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

from opaque_knapsack.cli import main
from opaque_knapsack.train.export import ExportOptions, export_traces

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


UNUSABLE = {
    "blocked": text_reply("BLOCKED: SAFETY\nThe prompt was blocked."),
    "empty": ChatMessageAssistant(content=[]),
    "only_reasoning": ChatMessageAssistant(
        content=[ContentReasoning(reasoning=SIGNATURE, summary="Thinking, then the token limit.", redacted=True)]
    ),
}


def test_turns_with_no_usable_text_drop_their_episode_and_are_counted(fixture_logs, tmp_path):
    episodes = [episode(text_reply(), bad, text_reply("Done.")) for bad in UNUSABLE.values()]
    episodes.append(episode(text_reply(), text_reply("Done.")))  # a usable one
    log = hand_built_log(fixture_logs.persistent, tmp_path / "bad.eval", episodes)
    out = tmp_path / "traces.jsonl"
    summary = export_traces([log], out)
    assert [record["task_id"] for record in lines(out)] == ["knapsack-0000000103"]
    assert summary.dropped == {"unusable_turn": 3}
    assert summary.unusable == {kind: 1 for kind in UNUSABLE}
    assert "unusable turns   episodes with blocked 1, empty 1, only_reasoning 1: dropped" in summary.table()


def test_keep_unusable_keeps_and_flags_them(fixture_logs, tmp_path):
    episodes = [episode(text_reply(), UNUSABLE["blocked"], UNUSABLE["empty"]), episode(text_reply())]
    log = hand_built_log(fixture_logs.persistent, tmp_path / "bad.eval", episodes)
    out = tmp_path / "traces.jsonl"
    summary = export_traces([log], out, ExportOptions(keep_unusable=True))
    flags = {record["task_id"]: record["unusable"] for record in lines(out)}
    assert flags == {"knapsack-0000000100": ["blocked", "empty"], "knapsack-0000000101": []}
    assert summary.dropped == {} and summary.unusable == {"blocked": 1, "empty": 1}
    assert "kept, flagged in 'unusable'" in summary.table()


def test_step_records_name_replies_that_stopped_early(fixture_logs, tmp_path):
    """A reply kept in the conversation whose stop reason was not normal is unusable, whatever its text.

    A reply the agent cut off (``cut_off``) is not in the conversation: a user
    message saying it ended unexpectedly stands in its place.
    """
    kept_filtered = [{"turn": 1, "code": None, "stop_reason": "content_filter", "cut_off": False}]
    kept_long = [{"turn": 1, "code": "print(1)", "stop_reason": "max_tokens", "cut_off": False}]
    replaced = [{"turn": 1, "code": None, "stop_reason": "max_tokens", "cut_off": True}]
    normal = [{"turn": 1, "code": "print(1)", "stop_reason": "stop", "cut_off": False}]
    older = [{"turn": 1, "code": "print(1)"}]  # a log from before stop reasons were recorded
    episodes = [episode(text_reply(), steps=steps) for steps in (kept_filtered, kept_long, replaced, normal, older)]
    log = hand_built_log(fixture_logs.persistent, tmp_path / "stops.eval", episodes)
    out = tmp_path / "traces.jsonl"
    summary = export_traces([log], out)
    assert sorted(record["task_id"] for record in lines(out)) == [f"knapsack-000000010{i}" for i in (2, 3, 4)]
    assert summary.dropped == {"unusable_turn": 2}
    assert summary.unusable == {"content_filter": 1, "max_tokens": 1}


def test_a_turn_with_only_tool_calls_is_usable(fixture_logs, tmp_path):
    from inspect_ai.tool import ToolCall

    call = ChatMessageAssistant(content="", tool_calls=[ToolCall(id="c1", function="finish", arguments={})])
    log = hand_built_log(fixture_logs.persistent, tmp_path / "calls.eval", [episode(text_reply(), call)])
    out = tmp_path / "traces.jsonl"
    summary = export_traces([log], out)
    assert lines(out)[0]["messages"][-1]["tool_calls"][0]["function"]["name"] == "finish"
    assert summary.unusable == {} and summary.kept == 1


def test_cli_keep_unusable(fixture_logs, tmp_path, capsys):
    log = hand_built_log(fixture_logs.persistent, tmp_path / "bad.eval", [episode(text_reply(), UNUSABLE["empty"])])
    out = tmp_path / "traces.jsonl"
    assert main(["export", str(log), "--out", str(out)]) == 2
    assert "dropped unusable_turn: 1" in capsys.readouterr().err
    assert main(["export", str(log), "--out", str(out), "--keep-unusable"]) == 0
    assert "unusable turns   episodes with empty 1: kept" in capsys.readouterr().out
    assert lines(out)[0]["unusable"] == ["empty"]
