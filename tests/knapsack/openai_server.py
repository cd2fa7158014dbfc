"""A loopback OpenAI-compatible chat server for the live-model tests (standard library only).

It plays a tiny CodeAct model: turn 1 lists the items (with ``json`` used
unimported, as the paper's interpreter allows), turn 2 calls ``finish()``.
Every request is recorded; usage reports cached and reasoning tokens; replies
can carry ``reasoning_content``; ``fail_status`` makes every chat request fail
with that HTTP status. ``/v1/models`` lists the base model and its LoRA
adapters, as a vLLM server started by ``opaque-knapsack serve`` does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from loopback import JSONHandler, LoopbackHTTP

REASONING = "I should list the items before deciding anything."
TURNS = (
    "Let me look at the items.\n```python\nids = json.loads(list_items())\nprint(len(ids))\n```",
    "Done.\n```python\nfinish()\n```",
)
CACHED_TOKENS = 600
REASONING_TOKENS = 20
COMPLETION_TOKENS = 50


@dataclass
class Usage:
    prompt: int
    completion: int = COMPLETION_TOKENS
    cached: int = CACHED_TOKENS
    reasoning: int = REASONING_TOKENS

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.total,
            "prompt_tokens_details": {"cached_tokens": self.cached},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning},
        }


@dataclass
class FakeOpenAI:
    """The server's script and what it saw."""

    base_model: str = "Qwen/Qwen3-8B"
    adapters: tuple[str, ...] = ("persistent", "stateless")
    reasoning: bool = True
    fail_status: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def models(self) -> dict[str, Any]:
        data = [{"id": self.base_model, "object": "model", "owned_by": "vllm", "max_model_len": 40960}]
        data += [{"id": name, "object": "model", "owned_by": "vllm", "parent": self.base_model} for name in self.adapters]
        return {"object": "list", "data": data}

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
            if self.fail_status is not None:
                kind = "server_error" if self.fail_status >= 500 else "invalid_request_error"
                return self.fail_status, {"error": {"message": f"scripted {self.fail_status}", "type": kind, "code": None}}
            turn = sum(1 for message in body["messages"] if message["role"] == "assistant")
            message: dict[str, Any] = {"role": "assistant", "content": TURNS[min(turn, len(TURNS) - 1)]}
            if self.reasoning:
                message["reasoning_content"] = REASONING
            usage = Usage(prompt=1000 + 10 * len(body["messages"]))
            self.replies.append(message)
            self.usages.append(usage)
            return 200, {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": usage.to_json(),
            }


class _Handler(JSONHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.rstrip("/").endswith("/models"):
            self.send_json(200, self.server.fake.models())
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.read_json()
        if self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(*self.server.fake.chat(body))
        else:
            self.send_json(404, {"error": {"message": "not found"}})


class LoopbackServer(LoopbackHTTP):
    """The fake OpenAI API on 127.0.0.1, an ephemeral port; ``base_url`` ends in /v1."""

    def __init__(self, fake: FakeOpenAI | None = None) -> None:
        super().__init__(_Handler)
        self.fake = fake or FakeOpenAI()
        self.http.fake = self.fake  # type: ignore[attr-defined]  # what the handler answers from
