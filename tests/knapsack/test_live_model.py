"""The live model path, against a loopback OpenAI-compatible server, through `inspect eval` and `matrix`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log

from opaque_knapsack.solvers.prompts import RUNTIME_NOTES
from opaque_knapsack.train.export import ExportOptions, export_traces

from .openai_server import CACHED_TOKENS, REASONING, REASONING_TOKENS, FakeOpenAI, LoopbackServer


def run(args: list[str], server: LoopbackServer, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """A command with the providers pointed at the loopback server and no real keys."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="test-key",
        VLLM_BASE_URL=server.base_url,
        VLLM_API_KEY="test-key",
        # the parent's own import path, in its order: putting src/ first would
        # make an installed checkout's src/*.egg-info shadow the installed
        # distribution, and Inspect would then not namespace the task
        PYTHONPATH=os.pathsep.join(filter(None, sys.path)),
        INSPECT_DISPLAY="none",
    )
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


STUDENT_SAMPLING = ("--temperature", "0.2", "--max-tokens", "12288")


def inspect_eval(
    server: LoopbackServer, model: str, log_dir: Path, *extra: str, sampling: tuple[str, ...] = STUDENT_SAMPLING
) -> subprocess.CompletedProcess[str]:
    return run(
        [sys.executable, "-m", "inspect_ai", "eval", "opaque_knapsack/knapsack", "--model", model,
         "-T", "num=1", *sampling, "--log-dir", str(log_dir), *extra],
        server,
    )  # fmt: skip


def only_log(log_dir: Path) -> Any:
    [info] = list_eval_logs(str(log_dir))
    return read_eval_log(info.name)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def as_sent(message: dict[str, Any]) -> dict[str, Any]:
    """A request message reduced to what a training conversation holds.

    Inspect's OpenAI provider re-sends an earlier assistant turn that had
    reasoning as its text parts each prefixed by one newline (its way of
    joining content parts); the model generated the text without it, so that
    one separator is not part of the turn.
    """
    content = text_of(message.get("content") or "")
    reduced = {"role": message["role"], "content": content}
    if message.get("reasoning_content"):
        reduced["reasoning_content"] = message["reasoning_content"]
        reduced["content"] = content.removeprefix("\n")
    return reduced


def test_openai_model_end_to_end_with_cached_and_reasoning_tokens(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        result = inspect_eval(server, "openai/gpt-4.1", tmp_path / "logs", "-T", "runtime=persistent")
    assert result.returncode == 0, result.stderr[-3000:]
    fake = server.fake
    assert len(fake.requests) == 2
    for body in fake.requests:
        assert body["model"] == "gpt-4.1"
        assert body["temperature"] == 0.2
        assert 12288 in (body.get("max_tokens"), body.get("max_completion_tokens"))
        assert RUNTIME_NOTES["persistent"] in text_of(body["messages"][0]["content"])
    log = only_log(tmp_path / "logs")
    [sample] = log.samples
    figures = sample.scores["knapsack_scorer"].value
    assert figures["total_tokens"] == sum(usage.total for usage in fake.usages)
    assert figures["input_tokens"] == sum(usage.prompt for usage in fake.usages)
    assert figures["cached_input_tokens"] == 2 * CACHED_TOKENS
    assert figures["reasoning_tokens"] == 2 * REASONING_TOKENS
    assert figures["name_error_episode"] == 0  # json is pre-bound, as in the paper's interpreter
    assert sample.store["knapsack:end_reason"] == "finished"

    # the model's earlier reasoning went back to it, and the export is exactly what it saw
    assert fake.requests[1]["messages"][2]["reasoning_content"] == REASONING
    export_traces([tmp_path / "logs"], tmp_path / "traces.jsonl", ExportOptions())
    [line] = (tmp_path / "traces.jsonl").read_text().splitlines()
    exported = json.loads(line)["messages"]
    expected = [as_sent(message) for message in fake.requests[-1]["messages"]] + [as_sent(fake.replies[-1])]
    assert exported == expected
    assert exported[-1]["reasoning_content"] == REASONING


def test_a_teacher_runs_on_the_providers_sampling_defaults(tmp_path: Path) -> None:
    """The task imposes no sampling settings: the paper's teacher ran on the provider's defaults."""
    with LoopbackServer() as server:
        result = inspect_eval(server, "openai/gpt-4.1", tmp_path / "logs", sampling=())
    assert result.returncode == 0, result.stderr[-3000:]
    for body in server.fake.requests:
        assert "temperature" not in body
        assert "max_tokens" not in body and "max_completion_tokens" not in body


def test_exported_reasoning_renders_through_a_chat_template(tmp_path: Path) -> None:
    """Axolotl's chat_template datasets hand ``reasoning_content`` to the template (its default field_thinking)."""
    import jinja2

    with LoopbackServer() as server:
        assert inspect_eval(server, "openai/gpt-4.1", tmp_path / "logs", "-T", "runtime=stateless").returncode == 0
    export_traces([tmp_path / "logs"], tmp_path / "traces.jsonl", ExportOptions())
    messages = json.loads((tmp_path / "traces.jsonl").read_text())["messages"]
    template = jinja2.Template(
        "{% for m in messages %}<|{{ m.role }}|>"
        "{% if m.reasoning_content %}<think>{{ m.reasoning_content }}</think>{% endif %}"
        "{{ m.content }}{% endfor %}"
    )
    rendered = template.render(messages=messages)
    assert rendered.count(f"<think>{REASONING}</think>") == 2


def test_vllm_lora_student_through_matrix(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        result = run(
            [sys.executable, "-m", "opaque_knapsack.cli", "matrix",
             "--student", "persistent=vllm/Qwen/Qwen3-8B:persistent", "--runtimes", "stateless",
             "--difficulty", "easy", "--num", "1", "--log-dir", str(tmp_path / "matrix")],
            server,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    fake = server.fake
    assert fake.requests and all(body["model"] == "persistent" for body in fake.requests)  # the LoRA's name
    for body in fake.requests:
        assert body["temperature"] == 0.2
        assert 12288 in (body.get("max_tokens"), body.get("max_completion_tokens"))
        assert RUNTIME_NOTES["stateless"] in text_of(body["messages"][0]["content"])
    log = only_log(tmp_path / "matrix")
    assert log.status == "success"
    assert log.eval.metadata["train"] == "persistent" and log.eval.metadata["runtime"] == "stateless"


@pytest.mark.slow
def test_a_server_error_is_retried_then_errors_the_sample(tmp_path: Path) -> None:
    with LoopbackServer(FakeOpenAI(fail_status=500)) as server:
        inspect_eval(server, "openai/gpt-4.1", tmp_path / "logs", "--max-retries", "2")
    assert len(server.fake.requests) >= 3  # the first try and Inspect's two retries
    log = only_log(tmp_path / "logs")
    assert log.status == "error"
    [sample] = log.samples
    assert sample.error is not None and "InternalServerError" in sample.error.message
    assert not sample.scores


@pytest.mark.slow
def test_a_bad_request_errors_the_sample_and_retry_on_error_redoes_it(tmp_path: Path) -> None:
    with LoopbackServer(FakeOpenAI(fail_status=400)) as server:
        inspect_eval(server, "openai/gpt-4.1", tmp_path / "logs", "--retry-on-error", "1")
    assert len(server.fake.requests) == 2  # not retried by the provider; the sample ran twice
    log = only_log(tmp_path / "logs")
    [sample] = log.samples
    assert sample.error is not None and "400" in sample.error.message
    assert len(sample.error_retries or []) == 1
    assert not sample.scores
