"""A stand-in for vLLM's OpenAI server that the study starts through its fake `serve.python`.

It lists the served base model and adapters on /v1/models and answers chat
completions as the loopback server of the live-model tests does (list the
items, then finish), each reply after $FAKE_VLLM_DELAY seconds. It appends
one line per chat request to $FAKE_VLLM_REQUESTS and writes its pid and argv
to $FAKE_VLLM_PIDS, so a test can count what was asked and check that nothing
outlives the stage.
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "knapsack")]

from fakes import vllm_arguments  # noqa: E402
from openai_server import FakeOpenAI, _Handler  # noqa: E402


class SlowFake(FakeOpenAI):
    def chat(self, body: dict) -> tuple[int, dict]:
        time.sleep(float(os.environ.get("FAKE_VLLM_DELAY", "0")))
        status, reply = super().chat(body)
        record = os.environ.get("FAKE_VLLM_REQUESTS")
        if record:
            with open(record, "a") as stream:
                stream.write(json.dumps({"model": body["model"]}) + "\n")
        return status, reply


def main() -> None:
    args = vllm_arguments()
    if os.environ.get("FAKE_VLLM_PIDS"):
        Path(os.environ["FAKE_VLLM_PIDS"]).write_text(json.dumps({"server": os.getpid(), "argv": sys.argv[1:]}))
    fake = SlowFake(base_model=args.served_model_name or args.model,
                    adapters=tuple(item.split("=", 1)[0] for item in args.lora_modules), reasoning=False)
    server = ThreadingHTTPServer((args.host, args.port), _Handler)
    server.daemon_threads = True
    server.fake = fake  # type: ignore[attr-defined]  # what the handler answers from
    server.serve_forever()


if __name__ == "__main__":
    main()
