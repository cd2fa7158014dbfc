"""The tiny-model subcommand: the student half's base model for CPU runs.

Kept apart from the other train subcommands so each file stays about one
thing; handlers import their modules lazily, like the rest of the CLI.
``student-smoke`` is now the cpu-tiny study (``opaque_knapsack.study.cli``).
"""

from __future__ import annotations

import argparse
from typing import Any

from opaque_knapsack._cli import add_command, add_repeatable, options_from, user_errors


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "tiny-model",
        _tiny_model,
        help="build a tiny Qwen3-architecture base model locally (CPU smoke tests of train and serve)",
        description=(
            "A Qwen3 causal LM (hidden 256, 4 layers, about 7M parameters) with random weights, a byte-level BPE "
            "tokenizer trained on the given traces, and the ChatML chat template the export and vLLM use "
            "(enable_thinking honoured). Deterministic for a seed; downloads nothing. Use it as --base-model for "
            "`axolotl-config --profile cpu-tiny` and `serve`, or to smoke-test a GPU setup before Qwen3-8B."
        ),
    )
    parser.add_argument("--out", required=True, help="Model directory to write.")
    add_repeatable(
        parser, "--traces", "PATH", "Exported traces (.jsonl) or Inspect logs (file or folder) to train the tokenizer "
        "on. Default: run the quickstart's offline 2x2 into OUT/quickstart and use its logs.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights (default 0).")
    parser.add_argument(
        "--max-position-embeddings",
        type=int,
        default=40960,
        help="Longest context (default 40960, the serve default --max-model-len).",
    )
    parser.add_argument("--vocab-size", type=int, default=8192, help="Target BPE vocabulary (default 8192).")
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="Build it with this Python (or the virtual environment holding it), one with torch and transformers, "
        "e.g. the study's student-train environment; default: this Python.",
    )


def _tiny_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from opaque_knapsack.student.tiny_model import TinyModelSpec

    spec = options_from(TinyModelSpec, args)
    traces = list(args.traces)
    if not traces:
        from opaque_knapsack.quickstart import quickstart

        corpus = Path(args.out) / "quickstart"
        print(f"no --traces: running the quickstart's offline 2x2 into {corpus} for the tokenizer's corpus")
        quickstart(corpus)
        traces = [str(corpus / "logs")]
    if args.python:
        summary = _tiny_model_elsewhere(args.python, Path(args.out), traces, spec)
    else:
        summary = _tiny_model_here(Path(args.out), traces, spec)
    print(
        f"wrote {args.out}: Qwen3 architecture, {summary['parameters']:,} parameters, vocabulary "
        f"{summary['vocab_size']}, context {summary['max_position_embeddings']}, seed {summary['seed']}"
    )
    return 0


def _tiny_model_here(out: Any, traces: list[str], spec: Any) -> dict[str, Any]:
    import importlib.util

    from opaque_knapsack.errors import CommandError
    from opaque_knapsack.student.tiny_model import TinyModelError, build_tiny_model

    missing = [name for name in ("torch", "transformers", "tokenizers") if importlib.util.find_spec(name) is None]
    if missing:
        raise CommandError(
            f"building the model needs {', '.join(missing)}, which this Python lacks: pip install "
            "'opaque-knapsack[cpu-train]', or pass --python PATH (a Python or virtual environment that has them, "
            "e.g. ~/.cache/opaque-knapsack/envs/student-train)"
        )
    with user_errors(TinyModelError):
        return build_tiny_model(out, traces, spec)


def _tiny_model_elsewhere(python: str, out: Any, traces: list[str], spec: Any) -> dict[str, Any]:
    """Build it in another environment's Python (one with torch), e.g. the study's student-train environment."""
    from pathlib import Path

    from opaque_knapsack.student.tiny_model import TinyModelError, build_elsewhere
    from opaque_knapsack.train.launch import LaunchError, resolve_vllm_python

    with user_errors(LaunchError), user_errors(TinyModelError, prefix=f"--python {python}: "):
        return build_elsewhere(resolve_vllm_python(python), Path(out), [Path(trace) for trace in traces], spec)
