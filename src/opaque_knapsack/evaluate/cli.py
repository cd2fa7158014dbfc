"""``opaque-knapsack matrix``: every student in every runtime at every difficulty, as one eval set."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from opaque_knapsack._cli import add_command, add_repeatable, options_from, user_errors
from opaque_knapsack.errors import CommandError
from opaque_knapsack.records import AGENTS, CODEACT


def register(subparsers: Any) -> None:
    from opaque_knapsack.train.students import STUDENT_MAX_TOKENS, STUDENT_TEMPERATURE

    parser = add_command(
        subparsers,
        "matrix",
        _matrix,
        help="evaluate every student x runtime x difficulty as one resumable Inspect eval set",
        description=(
            "The cross-evaluation: every --student in every runtime at every difficulty, each condition "
            "one Inspect task named after its student, runtime and difficulty and tagged for the reports. "
            "All run as one eval set in --log-dir, so re-running the same command resumes. With --num 100 "
            "and two difficulties, a 3-student matrix is 1,200 episodes: try --num 5 first, or --dry-run "
            "to see the conditions. Read the results with `opaque-knapsack report LOG_DIR`."
        ),
    )
    add_repeatable(
        parser, "--student", "LABEL=MODEL", "A student and its Inspect model, e.g. persistent=vllm/Qwen/Qwen3-8B:persistent.",
        required=True,
    )
    parser.add_argument("--runtimes", default="persistent,stateless", help="Comma list (default persistent,stateless).")
    parser.add_argument("--difficulty", default=None, help="Comma list of presets (default easy,medium).")
    add_repeatable(
        parser, "--tasks", "DIR", "A folder of task files (e.g. the paper's), one per difficulty, labelled from its "
        "manifest or files; replaces --difficulty/--num/--seed-start.",
    )
    parser.add_argument("--num", type=int, default=100, help="Instances per condition (default 100).")
    parser.add_argument("--seed-start", type=int, default=123456789, help="First instance seed (default 123456789).")
    parser.add_argument("--agent", choices=AGENTS, default=CODEACT, help="Agent (default codeact).")
    parser.add_argument("--log-dir", required=True, help="Eval-set log directory (re-run to resume).")
    parser.add_argument(
        "--max-connections", type=int,
        help="Concurrent model connections, i.e. vLLM batching (default: the Inspect provider's, 10 for most).",
    )
    parser.add_argument(
        "--max-samples", type=int,
        help="Concurrent samples per task (default: Inspect's, as many as --max-connections).",
    )
    parser.add_argument("--max-tasks", type=int, help="Concurrent tasks (default: all conditions).")
    parser.add_argument("--model-base-url", help="Base URL of the model server (e.g. http://127.0.0.1:8000/v1).")
    parser.add_argument(
        "--temperature", type=float, default=STUDENT_TEMPERATURE,
        help=f"Sampling temperature (default {STUDENT_TEMPERATURE}, the paper's students').",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=STUDENT_MAX_TOKENS,
        help=f"Output tokens per turn (default {STUDENT_MAX_TOKENS}, the paper's students').",
    )
    parser.add_argument(
        "--time-limit", type=int,
        help="Wall-clock seconds per episode (the paper's students: 900). Under load a limit turns slow "
        "episodes into failed ones: leave headroom or lower --max-connections.",
    )
    parser.add_argument("--retry-attempts", type=int, help="Eval-set retry attempts (Inspect default 10).")
    parser.add_argument("--dry-run", action="store_true", help="List the conditions instead of running them.")


def _matrix(args: argparse.Namespace) -> int:
    from opaque_knapsack.evaluate.matrix import MatrixError, MatrixSpec, describe, parse_students, run_matrix

    if args.tasks and args.difficulty:
        raise CommandError("give --tasks DIR (labelled from its files) or --difficulty, not both")
    _check_difficulties(_comma_list(args.difficulty or ""))
    with user_errors(MatrixError):
        spec = options_from(
            MatrixSpec,
            args,
            flags=FIELD_FLAGS,
            students=dict(parse_students(args.student)),
            runtimes=_comma_list(args.runtimes),
            difficulties=_comma_list(args.difficulty or "easy,medium"),
        )
        spec.task_sets()
    print(describe(spec))
    if args.dry_run:
        return 0
    from opaque_knapsack.task_options import TaskOptionError

    with user_errors(MatrixError, TaskOptionError):
        success, logs = run_matrix(spec)
    for log in logs:
        print(f"{log.status:<9} {_cell(log):<32} {log.location}")
    for log in logs:
        note = _fault_note(log)
        if note:
            print(f"warning: {note}", file=sys.stderr)
    return 0 if success else 1


def _cell(log: Any) -> str:
    """train/runtime/difficulty of a matrix cell's log."""
    from opaque_knapsack.records import DIFFICULTY_METADATA_KEY, TRAIN_METADATA_KEY, runtime_of

    metadata = log.eval.metadata or {}
    return f"{metadata.get(TRAIN_METADATA_KEY)}/{runtime_of(None, log)}/{metadata.get(DIFFICULTY_METADATA_KEY)}"


def _fault_note(log: Any) -> str | None:
    """The step-timeout / kernel-restart warning for one condition's log (totals from the score means)."""
    from opaque_knapsack.records import FAULT_KEYS, ScoreKey, fault_note

    if log.results is None:
        return None
    totals = dict.fromkeys(FAULT_KEYS, 0.0)
    scored = 0
    for score in log.results.scores:
        if score.name in totals and "mean" in score.metrics:  # the family's scorer: the one with these keys
            scored = score.scored_samples or log.results.completed_samples
            totals[score.name] = round(score.metrics["mean"].value * scored)
    where = f"{_cell(log)} ({log.location})"
    return fault_note(where, totals[ScoreKey.STEP_TIMEOUTS], totals[ScoreKey.KERNEL_RESTARTS], scored)


def _check_difficulties(difficulties: list[str]) -> None:
    """Before any work: a preset name the task would refuse only after the plan is printed."""
    from opaque_knapsack.knapsack.presets import PRESETS

    unknown = [name for name in difficulties if name not in PRESETS]
    if unknown:
        raise CommandError(f"--difficulty {unknown[0]!r} is not one of: {', '.join(PRESETS)}")


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# Model fields whose flag is not the field's name with dashes.
FIELD_FLAGS = {"students": "--student", "difficulties": "--difficulty"}

