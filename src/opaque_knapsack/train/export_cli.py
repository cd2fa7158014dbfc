"""``opaque-knapsack export``: Inspect logs to training conversations."""

from __future__ import annotations

import argparse
from typing import Any

from opaque_knapsack._cli import add_command, options_from, progress_bar, user_errors
from opaque_knapsack.errors import CommandError
from opaque_knapsack.records import RUNTIMES


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "export",
        _export,
        help="export Inspect knapsack logs to JSONL training conversations for Axolotl",
        description=(
            "One conversation per episode, exactly the messages the model saw, ending on its last "
            "assistant turn, cut at the paper's 57,344 characters (its start kept). Every episode is kept "
            "unless a filter says otherwise (the paper trains on every trace), except those with an "
            "assistant turn of no usable text. Writes OUT (train), OUT's .val.jsonl sibling when "
            "--val-fraction > 0, and a .summary.json of what was kept, cut and dropped."
        ),
    )
    parser.add_argument(
        "logs", nargs="+", metavar="LOGS", help="Inspect log files (.eval/.json) or directories of them."
    )
    parser.add_argument("--out", required=True, help="Output JSONL path, e.g. traces.jsonl.")
    parser.add_argument(
        "--format",
        choices=["openai", "sharegpt"],
        default="openai",
        help="openai: 'messages' with role/content (default); sharegpt: 'conversations' with from/value.",
    )
    parser.add_argument("--min-score", type=float, default=None, help="Keep episodes with optimality >= this (0..1; default: keep every score).")
    parser.add_argument("--solved-only", action="store_true", help="Keep only solved episodes (optimality 1).")
    parser.add_argument("--runtime", choices=RUNTIMES, help="Keep only this runtime's episodes.")
    parser.add_argument(
        "--exclude-errors",
        action="store_true",
        help=(
            "Drop episodes that ended on an error or limit: sample error, Inspect limit, harness end reason "
            "other than 'finished' (store key knapsack:end_reason), or a length-truncated last generation."
        ),
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="Share of tasks (by sha256 of the task id) written to OUT's .val.jsonl sibling (default 0).",
    )
    parser.add_argument("--quiet", action="store_true", help="No progress bar (it shows only on a terminal).")
    parser.add_argument(
        "--no-dedup",
        action="store_true",
        help="Keep every episode instead of the best one per task (highest optimality, then fewest tokens).",
    )
    _register_export_length(parser)
    parser.add_argument(
        "--keep-unusable",
        action="store_true",
        help=(
            "Keep episodes with an assistant turn of no usable text (a safety stop, empty parts, a blocked "
            "prompt, only thinking) and flag them in an 'unusable' field, instead of dropping them."
        ),
    )


def _register_export_length(parser: argparse.ArgumentParser) -> None:
    # defaults stay the options' own (argparse.SUPPRESS leaves the field out), so they are written once
    parser.add_argument(
        "--truncate-at",
        type=int,
        metavar="CHARS",
        default=argparse.SUPPRESS,
        help=(
            "Cut each conversation at this many characters, keeping its start: whole messages, ending on the "
            "last assistant turn that fits (default: the paper's 57344; 0: export conversations whole)."
        ),
    )
    parser.add_argument(
        "--sequence-len",
        type=int,
        metavar="TOKENS",
        default=argparse.SUPPRESS,
        help=(
            "Report how many exported conversations are longer than this many tokens, which Axolotl drops "
            "without a word (default: the Axolotl config's sequence_len, 16384)."
        ),
    )
    parser.add_argument(
        "--base-model",
        metavar="MODEL",
        help=(
            "Count tokens with this model's tokenizer and chat template, when transformers is installed and "
            "the tokenizer is on local disk (nothing is downloaded); otherwise tokens are estimated at 3.5 "
            "characters per token. The summary says which."
        ),
    )


def _export(args: argparse.Namespace) -> int:
    # checked before the export's imports (Inspect's log reader takes seconds to load)
    if args.min_score is not None and not 0 <= args.min_score <= 1:
        raise CommandError(f"--min-score {args.min_score}: must be between 0 and 1 (optimality is a fraction)")
    if not 0 <= args.val_fraction < 1:
        raise CommandError(f"--val-fraction {args.val_fraction}: must be at least 0 and less than 1")
    from opaque_knapsack.train.export import ExportError, ExportOptions, export_traces

    options = options_from(ExportOptions, args, flags=FIELD_FLAGS, dedup=not args.no_dedup)
    with progress_bar("exporting", quiet=args.quiet) as bar, user_errors(ExportError):
        summary = export_traces(args.logs, args.out, options, progress=bar.update)
    print(summary.table())
    return 0


# Model fields whose flag is not the field's name with dashes.
FIELD_FLAGS = {"dedup": "--no-dedup", "format": "--format"}
