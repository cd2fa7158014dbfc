"""A vLLM server as a child process: started, waited on until it serves every model, stopped whole.

vLLM's OpenAI server spawns an engine process of its own. The server runs in
a new session (its own process group), so stopping it signals the whole group
and nothing outlives it: first SIGINT (vLLM's own clean shutdown), then
SIGTERM, then SIGKILL, each after a grace period. Readiness is not "the port
answers" but "``/v1/models`` lists the base model and every adapter", since
vLLM answers before its LoRA modules are registered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from opaque_knapsack.train.launch import LaunchError

__all__ = ["ServerProcess", "served_models"]

POLL_SECONDS = 1.0


def served_models(base_url: str, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The model ids ``GET {base_url}/models`` lists (raises OSError when nothing answers)."""
    request = urllib.request.Request(base_url.rstrip("/") + "/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback URL we built)
        body = json.loads(response.read().decode("utf-8"))
    return [str(entry.get("id")) for entry in body.get("data", [])]


class ServerProcess:
    """One server command in its own process group, with its output sent to a log file or the terminal."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self.log_path = Path(log_path) if log_path else None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT if self._log else None,
                start_new_session=True,
            )
        except OSError as error:
            raise LaunchError(f"{self.command[0]}: cannot start the server ({error.strerror})") from None

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.pid  # a new session's leader: its pid is the group id

    def wait_ready(
        self, base_url: str, names: Sequence[str], *, api_key: str | None = None, timeout: float = 900.0
    ) -> list[str]:
        """Poll until ``/v1/models`` lists every name; LaunchError if the server exits or time runs out."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        listed: list[str] = []
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise LaunchError(f"the vLLM server exited with status {code} before it was ready{self._tail()}")
            try:
                listed = served_models(base_url, api_key)
            except (OSError, ValueError):
                listed = []
            if listed and all(name in listed for name in names):
                return listed
            time.sleep(POLL_SECONDS)
        missing = [name for name in names if name not in listed]
        raise LaunchError(
            f"the vLLM server at {base_url} did not list {', '.join(missing)} within {timeout:.0f}s{self._tail()}"
        )

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def alive(self) -> bool:
        """Whether any process of the server's group is still running."""
        if self.process is None:
            return False
        self.process.poll()
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, grace: float = 30.0) -> None:
        """SIGINT, then SIGTERM, then SIGKILL to the whole group, until none of it is left."""
        if self.process is None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.alive():
                time.sleep(0.2)
        self.process.poll()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return f" (log {self.log_path}):\n" + "\n".join(text)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
