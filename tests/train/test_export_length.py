"""Export of over-long conversations: the paper's cut, and the count of those Axolotl would drop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_knapsack import hand_built_log
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

from opaque_knapsack.cli import main
from opaque_knapsack.train.export import ExportOptions, export_traces

# 1,000 + 1,000 characters of prompt, then 12 replies of 4,000 with observations of 3,000 between them:
# 83,000 characters. Whole messages up to 57,344 that end on a reply: the first 8 replies (55,000), the
# next observation would make 58,000.
PAIRS = 12


def long_episode() -> tuple[list, list]:
    messages = [ChatMessageSystem(content="S" * 1000), ChatMessageUser(content="U" * 1000)]
    for turn in range(PAIRS):
        if turn:
            messages.append(ChatMessageUser(content=f"{turn:03d}" + "o" * 2997))
        messages.append(ChatMessageAssistant(content=f"{turn:03d}" + "a" * 3997))
    return messages, []


def short_episode() -> tuple[list, list]:
    return [ChatMessageUser(content="Solve it."), ChatMessageAssistant(content="Done.")], []


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def characters(messages: list[dict]) -> int:
    return sum(len(message["content"]) for message in messages)


@pytest.fixture
def long_log(fixture_logs, tmp_path) -> Path:
    return hand_built_log(fixture_logs.persistent, tmp_path / "long.eval", [long_episode(), short_episode()])


def test_the_default_cut_is_the_papers_and_keeps_the_start(long_log, tmp_path):
    whole = lines_of(long_log, tmp_path / "whole.jsonl", ExportOptions(truncate_at=0))
    summary = export_traces([long_log], tmp_path / "cut.jsonl")
    cut = {record["task_id"]: record for record in lines(tmp_path / "cut.jsonl")}
    long_cut, long_whole = cut["knapsack-0000000100"], whole["knapsack-0000000100"]
    assert summary.options.truncate_at == 57_344
    assert len(long_whole["messages"]) == 25 and characters(long_whole["messages"]) == 83_000
    assert long_cut["messages"] == long_whole["messages"][:17]  # whole messages, the start kept
    assert long_cut["messages"][-1]["role"] == "assistant" and long_cut["messages"][-1]["content"].startswith("007")
    assert characters(long_cut["messages"]) == 55_000
    assert (long_cut["cut_messages"], long_cut["cut_characters"]) == (8, 28_000)
    assert cut["knapsack-0000000101"]["messages"] == whole["knapsack-0000000101"]["messages"]
    assert (cut["knapsack-0000000101"]["cut_messages"], cut["knapsack-0000000101"]["cut_characters"]) == (0, 0)
    assert summary.cut.model_dump() == {"at_characters": 57_344, "episodes": 1, "messages": 8, "characters": 28_000}
    assert "cut at 57344 characters: 1 episodes lost 8 messages, 28000 characters from their ends" in summary.table()


def lines_of(log: Path, out: Path, options: ExportOptions) -> dict[str, dict]:
    export_traces([log], out, options)
    return {record["task_id"]: record for record in lines(out)}


def test_a_cut_never_ends_on_an_observation(long_log, tmp_path):
    # 60,000 holds the observation after the 8th reply (58,000) too, but not the 9th reply (62,000)
    records = lines_of(long_log, tmp_path / "t.jsonl", ExportOptions(truncate_at=60_000))
    assert characters(records["knapsack-0000000100"]["messages"]) == 55_000
    records = lines_of(long_log, tmp_path / "t.jsonl", ExportOptions(truncate_at=62_000))
    assert records["knapsack-0000000100"]["messages"][-1]["content"].startswith("008")


def test_a_first_reply_over_the_limit_drops_the_episode(long_log, tmp_path):
    summary = export_traces([long_log], tmp_path / "t.jsonl", ExportOptions(truncate_at=5_000))
    assert summary.dropped == {"too_long": 1} and summary.kept == 1


def test_characters_count_reasoning_and_tool_calls():
    from opaque_knapsack.train.length import cut_conversation, message_characters

    call = {"id": "c1", "type": "function", "function": {"name": "inspect", "arguments": '{"item_id": "x"}'}}
    message = {"role": "assistant", "content": "abc", "reasoning_content": "think", "tool_calls": [call]}
    assert message_characters(message) == 3 + 5 + len("inspect") + len('{"item_id": "x"}')
    assert cut_conversation([{"role": "user", "content": "u"}, message], 0).removed_messages == 0


def test_the_summary_counts_conversations_over_the_sequence_length(long_log, tmp_path):
    summary = export_traces([long_log], tmp_path / "t.jsonl")
    length = summary.length
    assert length.sequence_len == 16_384  # the Axolotl config's sequence_len
    assert length.counted_with == "estimated at 3.5 characters per token (no base model given)"
    # uncut: 83,000 / 3.5 = 23,715 tokens; cut: 55,000 / 3.5 = 15,715
    assert (length.over, length.over_uncut, length.longest) == (0, 1, 15_715)
    whole = export_traces([long_log], tmp_path / "t.jsonl", ExportOptions(truncate_at=0)).length
    assert (whole.over, whole.over_uncut, whole.longest, whole.over_by_runtime) == (1, 1, 23_715, {"persistent": 1})
    table = export_traces([long_log], tmp_path / "t.jsonl", ExportOptions(truncate_at=0)).table()
    assert "over 16384 tokens: 1 as exported (1 uncut), longest 23715; estimated at 3.5" in table
    assert "warning: 1 conversations are longer than sequence_len 16384: Axolotl drops them" in table


def test_a_base_model_without_a_local_tokenizer_falls_back_to_the_estimate(long_log, tmp_path):
    options = ExportOptions(base_model=str(tmp_path / "no-such-model"))
    length = export_traces([long_log], tmp_path / "t.jsonl", options).length
    assert length.counted_with.startswith("estimated at 3.5 characters per token (no local tokenizer for ")
    assert length.longest == 15_715


def test_tokens_are_counted_with_the_base_models_chat_template(fixture_logs, long_log, tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from opaque_knapsack.student.tiny_model import TinyModelSpec, train_tokenizer

    tokenizer = train_tokenizer(["Solve it. Done. Observation: step", "S U a o"], TinyModelSpec(vocab_size=512), 100_000)
    model = tmp_path / "tokenizer"
    tokenizer.save_pretrained(model)
    out = tmp_path / "t.jsonl"
    summary = export_traces([long_log, fixture_logs.react], out, ExportOptions(base_model=str(model), sequence_len=40))
    counts = [
        len(tokenizer.apply_chat_template(r["messages"], tools=r.get("tools"), tokenize=True, return_dict=False))
        for r in lines(out)
    ]
    assert summary.length.counted_with == f"the {model} tokenizer's chat template"
    assert summary.length.longest == max(counts)
    assert summary.length.over == sum(count > 40 for count in counts) > 0
    assert summary.length.over_by_runtime.keys() == {"persistent", "stateless"}


def test_cli_length_flags(long_log, tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(["export", str(long_log), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cut at 57344 characters: 1 episodes lost 8 messages" in printed
    assert "over 16384 tokens: 0 as exported (1 uncut)" in printed
    assert main(["export", str(long_log), "--out", str(out), "--truncate-at", "0", "--sequence-len", "20000"]) == 0
    printed = capsys.readouterr().out
    assert "cut: none (--truncate-at 0)" in printed and "over 20000 tokens: 1 as exported (1 uncut)" in printed
    assert main(["export", str(long_log), "--out", str(out), "--truncate-at", "-1"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("opaque-knapsack export: error: --truncate-at -1")
    assert main(["export", str(long_log), "--out", str(out), "--sequence-len", "0"]) == 2
    assert "--sequence-len 0" in capsys.readouterr().err


def test_the_docs_give_the_cut_the_export_makes():
    from opaque_knapsack.train.length import CHARACTERS_PER_TOKEN, PAPER_CUT_CHARACTERS

    root = Path(__file__).resolve().parents[2]
    differences = (root / "docs" / "differences-from-the-paper.md").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8").split("### Export traces", 1)[1]
    for text in (differences, readme):
        assert f"{PAPER_CUT_CHARACTERS:,} characters" in text and "`--truncate-at" in text
    assert "`--keep-unusable`" in differences
    assert f"{CHARACTERS_PER_TOKEN:g} characters per token" in readme
