"""A stand-in for vLLM's OpenAI server: lists its models on /v1/models, and has an 'engine' child.

Started by the fake Python the serve tests hand to ``serve --python``. It records
its own pid and its child's in $FAKE_VLLM_PIDS so the test can check that
stopping the server leaves neither behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from fakes import vllm_arguments  # noqa: E402


def main() -> None:
    args = vllm_arguments()
    names = [args.served_model_name or args.model] + [item.split("=", 1)[0] for item in args.lora_modules]
    engine = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"])
    with open(os.environ["FAKE_VLLM_PIDS"], "w") as stream:
        json.dump({"server": os.getpid(), "engine": engine.pid, "argv": sys.argv[1:]}, stream)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"data": [{"id": name} for name in names]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
