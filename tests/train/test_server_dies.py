"""A vLLM server that dies in the middle of the matrix: its samples error and are retried, never scored."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from loopback import LoopbackHTTP

from opaque_knapsack.evaluate.matrix import MatrixSpec, run_matrix

pytestmark = pytest.mark.slow

REPLY = "Let me look.\n```python\nprint(list_items())\n```"


class DyingServer(LoopbackHTTP):
    """OpenAI-compatible enough for Inspect's vLLM provider; stops answering after `answers` completions."""

    def __init__(self, answers: int) -> None:
        self.answers = answers
        self.completions = 0
        self.dead = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.reply(self, {"data": [{"id": "tiny", "max_model_len": 8192}, {"id": "persistent"}]})

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if server.dead.is_set():
                    self.close_connection = True
                    self.connection.close()  # what a crashed server looks like from the client
                    return
                server.completions += 1
                if server.completions >= server.answers:
                    server.dead.set()
                server.reply(self, completion())

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)



def completion() -> dict:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "persistent",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": REPLY}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def test_samples_of_a_dead_server_error_are_retried_and_never_scored(tmp_path, monkeypatch):
    with DyingServer(answers=1) as server:
        monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
        monkeypatch.setenv("VLLM_API_KEY", "inspectai")
        spec = MatrixSpec(
            students={"persistent": "vllm/tiny:persistent"},
            runtimes=["persistent"],
            difficulties=["easy"],
            num=2,
            log_dir=str(tmp_path / "matrix"),
            max_tokens=64,
            max_retries=0,
            timeout=20,
            retry_on_error=1,
            retry_attempts=0,
            display="none",
            task_options={"max_turns": 3},
        )
        success, logs = run_matrix(spec)
    assert server.completions == 1 and server.dead.is_set()
    assert not success
    from inspect_ai.log import read_eval_log

    (log,) = logs
    log = read_eval_log(log.location)
    assert log.status == "error"
    samples = log.samples or []
    # Inspect ends the eval at the first sample that errors past its retries, so the
    # other sample is logged only if it errored first (timing): one or both.
    assert 1 <= len(samples) <= 2
    for sample in samples:
        assert sample.error is not None, sample.id  # an error, not an episode
        assert not sample.scores, sample.id  # never scored
        assert sample.error_retries, sample.id  # and retried before giving up
