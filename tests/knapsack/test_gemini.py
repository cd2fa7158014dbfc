"""Gemini as teacher, through `inspect eval --model google/...` against a loopback Gemini-compatible server.

Every token figure the log records is checked against the server's
``usageMetadata``; a safety stop is dropped as the paper's loop drops it
(not run, not kept, counted as cut off, its billed tokens kept); a 500 or a
429 is retried by Inspect or errors the sample, never a scored failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opaque_knapsack.records import END_REASON_KEY, STEPS_KEY
from opaque_knapsack.solvers.prompts import cut_off_notice
from opaque_knapsack.train.export import ExportOptions, export_traces

from .gemini_server import FakeGemini, GeminiReply, GeminiServer, GeminiUsage
from .openai_server import TURNS
from .test_live_model import only_log

MODEL = "google/gemini-2.5-flash"
THOUGHT = "The ids come first; I list them before inspecting anything."
SIGNATURE = "c2lnbmVkIHRob3VnaHQ="


def gemini_eval(
    server: GeminiServer,
    log_dir: Path,
    *extra: str,
    via: str = "env",
    keys: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`inspect eval` of one knapsack task with the google provider pointed at the server (by env or flag)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, sys.path)), INSPECT_DISPLAY="none")
    env.update({"GOOGLE_API_KEY": "test-key"} if keys is None else keys)
    where = ["--model-base-url", server.base_url] if via == "flag" else []
    if via == "env":
        env["GOOGLE_BASE_URL"] = server.base_url
    return subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "opaque_knapsack/knapsack", "--model", MODEL, "-T", "num=1",
         "--log-dir", str(log_dir), *where, *extra],
        capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
    )  # fmt: skip


def figures_of(usage: GeminiUsage) -> dict[str, int]:
    """The step record's token figures a reply with this usageMetadata must give."""
    return {
        "input_tokens": usage.prompt,
        "cached_input_tokens": usage.cached,
        "output_tokens": usage.candidates + usage.thoughts,  # Gemini bills thoughts as output
        "reasoning_tokens": usage.thoughts,
        "total_tokens": usage.total,
        "billed_tokens": usage.total,
    }


TOKEN_FIELDS = tuple(figures_of(GeminiUsage()))


def test_token_figures_equal_the_servers_and_a_safety_stop_is_dropped(tmp_path: Path) -> None:
    fake = FakeGemini(
        replies=[
            GeminiReply(TURNS[0], thought=THOUGHT, signature=SIGNATURE, usage=GeminiUsage(1200, 800, 61, 33)),
            GeminiReply(finish_reason="SAFETY", usage=GeminiUsage(1300, 1100, 7, 90)),
        ],
        then=GeminiReply(TURNS[1], usage=GeminiUsage(1400, 1200, 25, 0)),
    )
    with GeminiServer(fake) as server:
        result = gemini_eval(server, tmp_path / "logs")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(fake.requests) == 3
    [sample] = only_log(tmp_path / "logs").samples
    assert sample.error is None and sample.store[END_REASON_KEY] == "finished"
    first, safety, last = (reply.usage for reply in fake.answered)

    steps = sample.store[STEPS_KEY]
    kept = {**figures_of(safety), **{key: 0 for key in TOKEN_FIELDS if key != "billed_tokens"}}
    assert [{key: step[key] for key in TOKEN_FIELDS} for step in steps] == [figures_of(first), kept, figures_of(last)]
    assert [(step["stop_reason"], step["cut_off"]) for step in steps] == [
        ("stop", False), ("content_filter", True), ("stop", False)
    ]
    figures = sample.scores["knapsack_scorer"].value
    for key in TOKEN_FIELDS:
        assert figures[key] == figures_of(first)[key] + kept[key] + figures_of(last)[key], key
    assert figures["billed_tokens"] == first.total + safety.total + last.total
    assert figures["cut_off_replies"] == 1 and figures["steps"] == 3

    # the safety stop was never kept: the model was told, and the next request holds no empty model turn
    roles = [message.role for message in sample.messages]
    assert roles == ["system", "user", "assistant", "user", "user", "assistant"]
    assert sample.messages[4].text == cut_off_notice("content_filter")
    sent = fake.requests[2]["contents"]
    assert [content["role"] for content in sent] == ["user", "model", "user", "user"]
    # the signed reply went back with its signature, and the log keeps the thought text beside it
    assert any(part.get("thoughtSignature") == SIGNATURE for part in sent[1]["parts"])
    [reasoning] = [part for part in sample.messages[2].content if getattr(part, "type", None) == "reasoning"]
    assert reasoning.redacted and reasoning.summary == THOUGHT and reasoning.reasoning == SIGNATURE

    # the export carries the thought text, never the signature, and has no turn for the dropped reply
    summary = export_traces([tmp_path / "logs"], tmp_path / "traces.jsonl", ExportOptions())
    assert summary.kept == 1
    messages = json.loads((tmp_path / "traces.jsonl").read_text())["messages"]
    assert [m["role"] for m in messages] == roles
    assert messages[2]["reasoning_content"] == THOUGHT and messages[2]["content"] == TURNS[0]
    assert SIGNATURE not in (tmp_path / "traces.jsonl").read_text()


def test_the_teacher_gets_the_providers_sampling_defaults_through_model_base_url(tmp_path: Path) -> None:
    with GeminiServer() as server:
        result = gemini_eval(server, tmp_path / "logs", via="flag")
    assert result.returncode == 0, result.stderr[-3000:]
    [body] = server.fake.requests
    config: dict[str, Any] = body.get("generationConfig") or {}
    assert "temperature" not in config and "maxOutputTokens" not in config


def test_gemini_api_key_and_a_dotenv_file_work_and_google_api_key_wins(tmp_path: Path) -> None:
    """The README's claims on keys: GEMINI_API_KEY alone, from a .env file, and GOOGLE_API_KEY beside it."""
    (tmp_path / ".env").write_text("GEMINI_API_KEY=from-dotenv\n")
    with GeminiServer() as server:
        alone = gemini_eval(server, tmp_path / "alone", keys={}, cwd=tmp_path)
        both = gemini_eval(server, tmp_path / "both", keys={"GOOGLE_API_KEY": "google-key"}, cwd=tmp_path)
    assert alone.returncode == 0 and both.returncode == 0, (alone.stderr + both.stderr)[-3000:]
    assert server.fake.api_keys == ["from-dotenv", "google-key"]


def test_a_base_url_model_arg_fails_inside_inspect(tmp_path: Path) -> None:
    """Why the README says --model-base-url or GOOGLE_BASE_URL, never -M base_url=."""
    with GeminiServer() as server:
        result = gemini_eval(server, tmp_path / "logs", "-M", f"base_url={server.base_url}", via="none")
    assert result.returncode != 0 and not server.fake.requests
    assert "multiple values for keyword argument 'base_url'" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_500_and_a_429_are_retried_by_inspect(tmp_path: Path) -> None:
    fake = FakeGemini(replies=[GeminiReply(status=500), GeminiReply(status=429), GeminiReply(TURNS[0])])
    with GeminiServer(fake) as server:
        result = gemini_eval(server, tmp_path / "logs", "--max-retries", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [reply.status for reply in fake.answered] == [500, 429, 200, 200]
    [sample] = only_log(tmp_path / "logs").samples
    assert sample.error is None and sample.store[END_REASON_KEY] == "finished"
    figures = sample.scores["knapsack_scorer"].value
    assert figures["steps"] == 2  # the failed calls are not turns
    assert figures["billed_tokens"] == figures["total_tokens"] == sum(usage.total for usage in fake.billed())


@pytest.mark.slow
@pytest.mark.parametrize("status", [500, 429])
def test_an_error_that_outlasts_the_retries_errors_the_sample(tmp_path: Path, status: int) -> None:
    with GeminiServer(FakeGemini(then=GeminiReply(status=status))) as server:
        gemini_eval(server, tmp_path / "logs", "--max-retries", "1")
    assert len(server.fake.requests) == 2  # the call and Inspect's one retry
    log = only_log(tmp_path / "logs")
    assert log.status == "error"
    [sample] = log.samples
    assert sample.error is not None and not sample.scores  # never a scored failure
