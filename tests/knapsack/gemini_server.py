"""A loopback Gemini-compatible server for the live-model tests (standard library only).

It answers ``models/{model}:generateContent`` as the Gemini Developer API
does, from a script: one ``GeminiReply`` per request, in order, then the
``then`` reply for every request after the script runs out. A reply is a
normal answer (an optional thought part followed by a text part that carries
a ``thoughtSignature``), a stop for another reason (``finish_reason="SAFETY"``
with no content, ``"MAX_TOKENS"``), or an HTTP error (``status=500`` or
``429``). Every answer carries ``usageMetadata`` with prompt, cached content,
candidates and thoughts token counts and their total, so a test can check
every figure Inspect records against what the server said.

Point Inspect's google provider at it with ``GOOGLE_BASE_URL=server.base_url``
(or ``--model-base-url``) and any ``GOOGLE_API_KEY``. ``requests`` holds every
request body; ``answered`` the reply each got and ``api_keys`` the key each
carried, in the same order.

    fake = FakeGemini(replies=[GeminiReply(text=TURNS[0], thought="I look first.", signature="c2ln")])
    with GeminiServer(fake) as server:
        ...  # inspect eval --model google/gemini-2.5-flash with GOOGLE_BASE_URL=server.base_url
    fake.answered[0].usage.total  # what the server billed for the first reply
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from loopback import JSONHandler, LoopbackHTTP

FINISH = "Done.\n```python\nfinish()\n```"
ERROR_STATUS = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class GeminiUsage:
    """A reply's ``usageMetadata``; the total is what the API bills."""

    prompt: int = 1000
    cached: int = 600
    candidates: int = 50
    thoughts: int = 20

    @property
    def total(self) -> int:
        return self.prompt + self.candidates + self.thoughts

    def to_json(self) -> dict[str, int]:
        return {
            "promptTokenCount": self.prompt,
            "cachedContentTokenCount": self.cached,
            "candidatesTokenCount": self.candidates,
            "thoughtsTokenCount": self.thoughts,
            "totalTokenCount": self.total,
        }


@dataclass(frozen=True)
class GeminiReply:
    """One scripted answer to a generateContent request."""

    text: str = FINISH
    thought: str | None = None
    """A thought part before the text (``"thought": true``)."""
    signature: str | None = None
    """The text part's ``thoughtSignature`` (base64)."""
    finish_reason: str = "STOP"
    """``STOP``, ``MAX_TOKENS``, ``SAFETY`` (sent without content), ..."""
    status: int = 200
    """An HTTP error status (500, 429) answers with the API's error body instead."""
    usage: GeminiUsage = GeminiUsage()

    def parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if self.thought is not None:
            parts.append({"text": self.thought, "thought": True})
        text: dict[str, Any] = {"text": self.text}
        if self.signature is not None:
            text["thoughtSignature"] = self.signature
        return [*parts, text]

    def to_json(self, model: str) -> tuple[int, dict[str, Any]]:
        if self.status != 200:
            status = ERROR_STATUS.get(self.status, "UNKNOWN")
            return self.status, {"error": {"code": self.status, "message": f"scripted {self.status}", "status": status}}
        candidate: dict[str, Any] = {"index": 0, "finishReason": self.finish_reason}
        if self.finish_reason == "SAFETY":
            candidate["safetyRatings"] = [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
            ]
        else:
            candidate["content"] = {"role": "model", "parts": self.parts()}
        return 200, {"candidates": [candidate], "usageMetadata": self.usage.to_json(), "modelVersion": model}


@dataclass
class FakeGemini:
    """The server's script and what it saw."""

    replies: list[GeminiReply] = field(default_factory=list)
    then: GeminiReply = GeminiReply()
    """The answer to every request after ``replies`` is used up."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    answered: list[GeminiReply] = field(default_factory=list)
    api_keys: list[str | None] = field(default_factory=list)
    """The API key each request carried (the ``x-goog-api-key`` header)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def generate(self, model: str, body: dict[str, Any], api_key: str | None = None) -> tuple[int, dict[str, Any]]:
        with self.lock:
            reply = self.replies[len(self.requests)] if len(self.requests) < len(self.replies) else self.then
            self.requests.append(body)
            self.answered.append(reply)
            self.api_keys.append(api_key)
        return reply.to_json(model)

    def billed(self) -> list[GeminiUsage]:
        """The usage of every answer that was not an HTTP error."""
        return [reply.usage for reply in self.answered if reply.status == 200]


class _Handler(JSONHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.read_json()
        path = self.path.split("?", 1)[0]
        model, _, method = path.rpartition("/models/")[2].partition(":")
        if method == "generateContent":
            self.send_json(*self.server.fake.generate(model, body, self.headers.get("x-goog-api-key")))
        else:
            self.send_json(404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})


class GeminiServer(LoopbackHTTP):
    """The fake Gemini API on 127.0.0.1, an ephemeral port; ``base_url`` is its root."""

    def __init__(self, fake: FakeGemini | None = None) -> None:
        super().__init__(_Handler)
        self.fake = fake or FakeGemini()
        self.http.fake = self.fake  # type: ignore[attr-defined]  # what the handler answers from

    @property
    def base_url(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host}:{port}"
