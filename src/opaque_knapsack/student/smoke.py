"""What the cpu-tiny study checks about Axolotl's work: the loss falls, and only assistant turns are trained.

Once the pipeline of ``opaque-knapsack student-smoke``, which is now the
``cpu-tiny`` profile of ``opaque-knapsack study`` (``student-smoke`` runs that
study). Two checks are made on what Axolotl did, since they are what training
means: the training loss falls, and the tokens Axolotl trains on (labels other
than -100 in its prepared dataset) all lie inside assistant turns, and every
assistant turn has some. Reading the prepared dataset and the tokenizer needs
``datasets`` and ``transformers``, so that part runs in the training
environment (``DUMP_PREPARED``); the checks themselves are plain Python.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DUMP_PREPARED",
    "SmokeError",
    "assistant_regions",
    "check_assistant_mask",
    "check_loss_falls",
    "check_prepared_rows",
    "loss_curve",
]

# Runs in the student-train environment: argv = prepared folder, base model, output file, row limit.
# Writes the chat markers' token ids as the first line, then Axolotl's prepared rows (input_ids, labels).
DUMP_PREPARED = """
import json, sys
from pathlib import Path
from datasets import load_from_disk
from transformers import AutoTokenizer
root, base, out, limit = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
folders = sorted({p.parent for p in root.rglob("dataset_info.json")})
if not folders:
    sys.exit(f"no prepared dataset under {root}")
tokenizer = AutoTokenizer.from_pretrained(base)
start_id, end_id = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
markers = {"start_id": start_id, "end_id": end_id,
           "assistant_ids": tokenizer("assistant\\n", add_special_tokens=False)["input_ids"]}
rows = load_from_disk(str(folders[0]))
with out.open("w") as stream:
    stream.write(json.dumps(markers) + "\\n")
    for row in rows.select(range(min(limit, len(rows)))):
        stream.write(json.dumps({"input_ids": list(row["input_ids"]), "labels": list(row["labels"])}) + "\\n")
"""


class SmokeError(RuntimeError):
    """A check of the training run failed; the message names what and where."""


# -- training and its checks -------------------------------------------------------------


_LOSS = re.compile(r"['\"]loss['\"]\s*:\s*['\"]?([0-9.eE+-]+)")


def loss_curve(log_text: str) -> list[float]:
    """The training losses the Trainer logged (``{'loss': ...}`` lines), in order."""
    return [float(match.group(1)) for match in _LOSS.finditer(log_text)]


def check_loss_falls(curve: Sequence[float], where: Path | str = "the training log") -> None:
    """The mean of the last quarter of logged losses is below the mean of the first quarter."""
    if len(curve) < 4:
        raise SmokeError(f"only {len(curve)} training losses logged in {where}; cannot tell whether the loss fell")
    quarter = max(1, len(curve) // 4)
    first, last = sum(curve[:quarter]) / quarter, sum(curve[-quarter:]) / quarter
    if not last < first:
        raise SmokeError(f"the training loss did not fall ({first:.3f} -> {last:.3f}) in {where}")


def assistant_regions(input_ids: Sequence[int], start_id: int, end_id: int, assistant_ids: Sequence[int]) -> list[range]:
    """Token positions of each assistant turn's body: after ``<|im_start|>assistant\\n``, through ``<|im_end|>``."""
    regions, header = [], [start_id, *assistant_ids]
    position = 0
    while position < len(input_ids):
        if list(input_ids[position : position + len(header)]) == header:
            begin = position + len(header)
            end = begin
            while end < len(input_ids) and input_ids[end] != end_id:
                end += 1
            if begin < len(input_ids):  # a turn cut off right after its header (truncation) has no body
                regions.append(range(begin, min(end + 1, len(input_ids))))
            position = end + 1
        else:
            position += 1
    return regions


def check_assistant_mask(rows: Sequence[dict[str, list[int]]], start_id: int, end_id: int, assistant_ids: Sequence[int]) -> None:
    """Every trained token (label != -100) is inside an assistant turn, and every assistant turn is trained."""
    if not rows:
        raise SmokeError("no prepared rows to check")
    for number, row in enumerate(rows):
        ids, labels = row["input_ids"], row["labels"]
        regions = assistant_regions(ids, start_id, end_id, assistant_ids)
        if not regions:
            raise SmokeError(f"prepared row {number} has no assistant turn")
        inside = {position for region in regions for position in region}
        trained = {position for position, label in enumerate(labels) if label != -100}
        outside = sorted(trained - inside)
        if outside:
            raise SmokeError(f"prepared row {number}: {len(outside)} trained tokens outside the assistant turns (first at {outside[0]})")
        # a turn cut off by the sequence length (no <|im_end|> before the row ends) may carry none:
        # Axolotl finds a turn's tokens by its whole text, which a cut turn no longer holds
        whole = [region for region in regions if region.stop < len(ids) or ids[-1] == end_id]
        untrained = [region for region in whole if not trained & set(region)]
        if untrained:
            raise SmokeError(f"prepared row {number}: an assistant turn at token {untrained[0].start} carries no loss")
        wrong = [position for position in trained if labels[position] != ids[position]]
        if wrong:
            raise SmokeError(f"prepared row {number}: labels differ from the input ids at {wrong[:3]}")


def check_prepared_rows(rows_file: Path) -> int:
    """Check the rows DUMP_PREPARED wrote (markers first, then rows); returns how many were checked."""
    lines = [line for line in rows_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise SmokeError(f"{rows_file}: empty (the prepared dataset was not read)")
    markers = json.loads(lines[0])
    rows = [json.loads(line) for line in lines[1:]]
    check_assistant_mask(rows, markers["start_id"], markers["end_id"], markers["assistant_ids"])
    return len(rows)
