"""``opaque-knapsack axolotl-config``: an Axolotl QLoRA config for exported traces."""

from __future__ import annotations

import argparse
from typing import Any

from opaque_knapsack._cli import add_command, add_repeatable, user_errors
from opaque_knapsack.records import REACT, RUNTIMES


def register(subparsers: Any) -> None:
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
