"""Temporary files for atomic writes that end up with ordinary permissions.

``tempfile.mkstemp`` creates files with mode 0600, which an atomic rename then
carries to the output: exported traces other users could not read. Opening
with 0666 lets the umask decide, like any other file a command writes.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def create_temporary(path: Path) -> tuple[int, str]:
    """A new, exclusive temporary file next to PATH: (descriptor, name), mode 0666 & ~umask."""
    for _ in range(100):
        name = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def jsonl_records(path: Path, error: type[Exception]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed record) for each non-blank line of a JSONL file.

    A line that is not JSON raises ``error`` naming the file and the line, the
    one-line message every command that reads traces gives.
    """
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as problem:
                raise error(f"{path}:{number}: not JSON ({problem})") from None
            yield number, record
