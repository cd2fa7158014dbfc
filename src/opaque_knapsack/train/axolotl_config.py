"""Axolotl QLoRA configs for the students, with the paper's settings.

``build_axolotl_config`` returns an :class:`AxolotlConfig` (the pydantic model
of exactly what we emit) for one runtime's traces; ``write_axolotl_config``
writes it as YAML. Every value can be overridden (``overrides``: top-level
keys, or ``parent.child`` for the dict-valued ones). Unknown keys are refused
with the list of known ones unless ``allow_unknown``, in which case they are
passed through to Axolotl untouched. When Axolotl is installed the result is
also validated by Axolotl's own schema (``AxolotlInputConfig``); without it,
our model's types and ranges are the check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opaque_knapsack.records import REACT, ReActAgent, Runtime
from opaque_knapsack.train.files import create_temporary, jsonl_records

StudentRuntime = Literal[Runtime, ReActAgent]
"""Which student traces train: a CodeAct runtime's, or the ReAct baseline's (no runtime)."""
STUDENT_RUNTIMES: tuple[str, ...] = get_args(StudentRuntime)

__all__ = [
    "AxolotlConfig",
    "AxolotlDataset",
    "ConfigError",
    "PAPER_TARGET_MODULES",
    "build_axolotl_config",
    "write_axolotl_config",
    "validate_with_axolotl",
]

PAPER_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(ValueError):
    """A config that cannot be built: bad override, unknown key, bad traces file."""


class AxolotlDataset(BaseModel):
    """One ``chat_template`` dataset entry (Axolotl's SFTDataset subset we use)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    type: Literal["chat_template"] = "chat_template"
    ds_type: Literal["json"] = "json"
    chat_template: str = "tokenizer_default"
    field_messages: str = "messages"
    message_property_mappings: dict[str, str] = Field(default_factory=lambda: {"role": "role", "content": "content"})
    roles_to_train: list[str] = Field(default_factory=lambda: ["assistant"])
    train_on_eos: Literal["all", "turn", "last"] = "turn"
    field_tools: str | None = None


class AxolotlConfig(BaseModel):
    """The Axolotl config we emit: QLoRA on Qwen3-8B with the paper's settings."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = "Qwen/Qwen3-8B"
    # 4-bit NF4 with double quantization, bf16 compute
    load_in_4bit: bool = True
    load_in_8bit: bool = False
    adapter: Literal["qlora", "lora"] = "qlora"
    bnb_config_kwargs: dict[str, Any] = Field(
        default_factory=lambda: {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
    )
    bf16: bool | Literal["auto"] = True
    # LoRA
    lora_r: int = Field(default=64, ge=1, le=1024)
    lora_alpha: int = Field(default=128, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    lora_target_modules: list[str] = Field(default_factory=lambda: list(PAPER_TARGET_MODULES), min_length=1)
    # data
    chat_template: str = "tokenizer_default"
    datasets: list[AxolotlDataset] = Field(min_length=1)
    test_datasets: list[AxolotlDataset] | None = None
    val_set_size: float = Field(default=0.05, ge=0.0, lt=1.0)
    dataset_prepared_path: str = "last_run_prepared"
    sequence_len: int = Field(default=16384, ge=128)
    excess_length_strategy: Literal["drop", "truncate", "raise"] | None = None
    """What Axolotl does with a conversation longer than sequence_len (its default: drop it)."""
    sample_packing: bool = True
    eval_sample_packing: bool = False
    pad_to_sequence_len: bool = True
    # optimisation
    micro_batch_size: int = Field(default=1, ge=1)
    gradient_accumulation_steps: int = Field(default=16, ge=1)
    num_epochs: float = Field(default=3, gt=0)
    optimizer: str = "adamw_torch"
    lr_scheduler: str = "cosine"
    learning_rate: float = Field(default=1e-4, gt=0, lt=1)
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    gradient_checkpointing: bool = True
    attn_implementation: str = "flash_attention_2"
    """Flash attention (Axolotl 0.19 deprecates the older ``flash_attention: true``)."""
    seed: int = 3407
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimizer steps (None: run the epochs)."""
    # Axolotl's fused LoRA kernels need CUDA; None leaves Axolotl's own default.
    lora_mlp_kernel: bool | None = None
    lora_qkv_kernel: bool | None = None
    lora_o_kernel: bool | None = None
    # bookkeeping
    output_dir: str = "./outputs/student"
    logging_steps: int = Field(default=1, ge=1)
    saves_per_epoch: int = Field(default=1, ge=0)
    evals_per_epoch: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> AxolotlConfig:
        if self.adapter == "qlora" and not self.load_in_4bit:
            raise ValueError("adapter qlora needs load_in_4bit: true")
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are exclusive")
        if self.test_datasets and self.val_set_size:
            raise ValueError("test_datasets and a non-zero val_set_size are exclusive")
        return self


# Named sets of overrides, applied before the user's own. ``cpu-tiny`` is what
# Axolotl 0.19 needs to train on a CPU (no bf16, no fused CUDA LoRA kernels, no
# flash attention), at the sizes of the tiny local base model (`tiny-model`).
# Plain LoRA in float32: bitsandbytes' 4-bit path adds nothing at 7 M
# parameters, and its bf16 compute is ten times slower on a CPU.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu-tiny": {
        "bf16": False,
        "lora_mlp_kernel": False,
        "lora_qkv_kernel": False,
        "lora_o_kernel": False,
        "attn_implementation": "sdpa",
        "load_in_4bit": False,
        "adapter": "lora",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "sequence_len": 1024,
        "excess_length_strategy": "truncate",
        "sample_packing": False,
        "pad_to_sequence_len": False,
        "gradient_accumulation_steps": 1,
        "micro_batch_size": 1,
        "num_epochs": 1,
        "max_steps": 30,
        "learning_rate": 2e-3,
        "warmup_ratio": 0.05,
        "gradient_checkpointing": False,
        "val_set_size": 0.0,
        "evals_per_epoch": 0,
    },
}


def known_keys() -> list[str]:
    return sorted(AxolotlConfig.model_fields)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``true``, ``3``, ``[a, b]``, ``1e-4``)."""
    key, separator, raw = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise ConfigError(f"override {text!r} is not KEY=VALUE")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {key}: value {raw!r} is not valid YAML ({error})") from None
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else int(value)
        except ValueError:
            pass  # a plain string
    return key, value


def build_axolotl_config(
    traces: str | Path,
    runtime: StudentRuntime,
    base_model: str = "Qwen/Qwen3-8B",
    *,
    val_traces: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    allow_unknown: bool = False,
    profile: str = "paper",
) -> tuple[AxolotlConfig, dict[str, Any]]:
    """The config for one runtime's traces, and any unknown keys passed through.

    ``profile`` names a set of overrides from :data:`PROFILES`, applied first,
    so the user's own overrides still win.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    traces = Path(traces)
    layout = inspect_traces(traces, runtime)
    dataset = _dataset(traces, layout, runtime)
    values: dict[str, Any] = {
        "base_model": base_model,
        "datasets": [dataset],
        "output_dir": f"./outputs/{runtime}-student",
        "dataset_prepared_path": f"./last_run_prepared/{runtime}",
    }
    validation = Path(val_traces) if val_traces else _sibling_validation(traces)
    if validation is not None:
        if not validation.exists():
            raise ConfigError(f"{validation}: no such validation traces file")
        values["test_datasets"] = [_dataset(validation, inspect_traces(validation, runtime), runtime)]
        values["val_set_size"] = 0.0  # the exporter's task-id split replaces Axolotl's random one
    unknown: dict[str, Any] = {}
    values.update(PROFILES[profile])
    if validation is not None and "val_set_size" in PROFILES[profile]:
        values["val_set_size"] = 0.0
    for key, value in (overrides or {}).items():
        parent, _, child = key.partition(".")
        if parent not in AxolotlConfig.model_fields:
            if not allow_unknown:
                raise ConfigError(
                    f"unknown config key {parent!r} (pass --allow-unknown to send it to Axolotl anyway); "
                    f"known keys: {', '.join(known_keys())}"
                )
            _assign(unknown, parent, child, value)
            continue
        if child:
            current = values.get(parent, AxolotlConfig.model_fields[parent].get_default(call_default_factory=True))
            if not isinstance(current, dict):
                raise ConfigError(f"override {key}: {parent} is not a mapping")
            values[parent] = {**current, child: value}
        else:
            values[parent] = value
    try:
        config = AxolotlConfig.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'config'}: {item['msg']}" for item in error.errors()
        )
        raise ConfigError(f"invalid config: {problems}") from None
    return config, unknown


def config_dict(config: AxolotlConfig, unknown: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plain dict for YAML: None-valued optional keys left out, unknown keys appended."""
    data = config.model_dump(mode="json", exclude_none=True)
    data.update(unknown or {})
    return data


def validate_with_axolotl(data: dict[str, Any]) -> bool:
    """Validate with Axolotl's own schema when Axolotl is installed; False when it is not."""
    schema = _axolotl_schema()
    if schema is None:
        return False
    try:
        schema.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"Axolotl rejects the config: {error}") from None
    return True


def write_axolotl_config(config: AxolotlConfig, out: str | Path, unknown: dict[str, Any] | None = None) -> Path:
    """Write the config as YAML (atomically), after Axolotl's own check when available."""
    data = config_dict(config, unknown)
    validate_with_axolotl(data)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = create_temporary(out)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(f"# Axolotl QLoRA config for the {_runtime_of(config)} student (opaque-knapsack)\n")
            yaml.safe_dump(data, stream, sort_keys=False, default_flow_style=False)
        os.replace(name, out)
    finally:
        if os.path.exists(name):
            os.unlink(name)
    return out


def inspect_traces(path: Path, runtime: StudentRuntime) -> Literal["openai", "sharegpt"]:
    """The traces file's layout, after checking it holds this runtime's episodes."""
    if not path.exists():
        raise ConfigError(f"{path}: no such traces file")
    layout: Literal["openai", "sharegpt"] | None = None
    for number, record in jsonl_records(path, ConfigError):
        line_layout = "sharegpt" if "conversations" in record else "openai" if "messages" in record else None
        if line_layout is None:
            raise ConfigError(f"{path}:{number}: no 'messages' or 'conversations' field")
        if layout is not None and line_layout != layout:
            raise ConfigError(f"{path}:{number}: mixes {layout} and {line_layout} lines")
        layout = line_layout
        _check_runtime(path, number, record, runtime)
    if layout is None:
        raise ConfigError(f"{path}: traces file is empty")
    return layout


def _check_runtime(path: Path, number: int, record: dict[str, Any], runtime: StudentRuntime) -> None:
    agent, episode_runtime = record.get("agent"), record.get("runtime")
    if runtime == REACT:
        if agent is not None and agent != REACT:
            raise ConfigError(f"{path}:{number}: a {agent} episode in traces for the react student")
    elif agent == REACT:
        raise ConfigError(f"{path}:{number}: a react episode in traces for the {runtime} CodeAct student")
    elif episode_runtime is not None and episode_runtime != runtime:
        raise ConfigError(
            f"{path}:{number}: a {episode_runtime} episode in traces for the {runtime} student "
            f"(export with --runtime {runtime})"
        )


def _dataset(path: Path, layout: str, runtime: StudentRuntime) -> dict[str, Any]:
    dataset: dict[str, Any] = {"path": str(path.resolve())}
    if layout == "sharegpt":
        dataset["field_messages"] = "conversations"
        dataset["message_property_mappings"] = {"role": "from", "content": "value"}
    if runtime == REACT:
        dataset["field_tools"] = "tools"
    return dataset


def _sibling_validation(traces: Path) -> Path | None:
    stem = traces.name[: -len(".jsonl")] if traces.name.endswith(".jsonl") else traces.name
    candidate = traces.with_name(f"{stem}.val.jsonl")
    if candidate.exists() and candidate.stat().st_size > 0:
        return candidate
    return None


def _assign(target: dict[str, Any], parent: str, child: str, value: Any) -> None:
    if child:
        target.setdefault(parent, {})[child] = value
    else:
        target[parent] = value


def _runtime_of(config: AxolotlConfig) -> str:
    return Path(config.output_dir).name.removesuffix("-student")


def _axolotl_schema() -> Any | None:
    try:
        from axolotl.utils.schemas.config import AxolotlInputConfig  # type: ignore[import-not-found]
    except ImportError:
        try:
            from axolotl.utils.config.models.input.v0_4_1 import (  # type: ignore[import-not-found]
                AxolotlInputConfig,
            )
        except ImportError:
            return None
    return AxolotlInputConfig
