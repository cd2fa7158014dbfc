"""Axolotl config: the paper's values, overrides, refusals, dataset mapping, YAML."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from opaque_knapsack.cli import main
from opaque_knapsack.train.axolotl_config import (
    ConfigError,
    build_axolotl_config,
    config_dict,
    parse_override,
    write_axolotl_config,
)


def write_traces(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def codeact_record(runtime: str = "persistent", task_id: str = "knapsack-0000000000") -> dict:
    return {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
        ],
        "task_id": task_id,
        "runtime": runtime,
        "agent": "codeact",
    }


@pytest.fixture
def traces(tmp_path) -> Path:
    return write_traces(tmp_path / "traces.jsonl", [codeact_record()])


def test_paper_settings(traces):
    config, unknown = build_axolotl_config(traces, "persistent")
    assert unknown == {}
    data = config_dict(config)
    expected = {
        "base_model": "Qwen/Qwen3-8B",
        "load_in_4bit": True,
        "adapter": "qlora",
        "bnb_config_kwargs": {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True},
        "bf16": True,
        "lora_r": 64,
        "lora_alpha": 128,
        "lora_dropout": 0.05,
        "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "sequence_len": 16384,
        "sample_packing": True,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 16,
        "num_epochs": 3,
        "optimizer": "adamw_torch",
        "lr_scheduler": "cosine",
        "learning_rate": 1e-4,
        "warmup_ratio": 0.03,
        "weight_decay": 0.01,
        "gradient_checkpointing": True,
        "attn_implementation": "flash_attention_2",
        "val_set_size": 0.05,
        "seed": 3407,
        "output_dir": "./outputs/persistent-student",
    }
    for key, value in expected.items():
        assert data[key] == value, key
    [dataset] = data["datasets"]
    assert dataset == {
        "path": str(traces.resolve()),
        "type": "chat_template",
        "ds_type": "json",
        "chat_template": "tokenizer_default",
        "field_messages": "messages",
        "message_property_mappings": {"role": "role", "content": "content"},
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
    }
    assert "test_datasets" not in data


def test_overrides_named_and_generic(traces):
    key, value = parse_override("learning_rate=2e-5")
    assert (key, value) == ("learning_rate", 2e-5)
    assert parse_override("sample_packing=false") == ("sample_packing", False)
    assert parse_override("lora_target_modules=[q_proj, v_proj]") == ("lora_target_modules", ["q_proj", "v_proj"])
    assert parse_override("optimizer=adamw_bnb_8bit") == ("optimizer", "adamw_bnb_8bit")
    overrides = dict(
        [parse_override("lora_r=16"), parse_override("bnb_config_kwargs.bnb_4bit_quant_type=fp4"), ("num_epochs", 1)]
    )
    config, _ = build_axolotl_config(traces, "persistent", "some/base", overrides=overrides)
    assert config.lora_r == 16 and config.num_epochs == 1 and config.base_model == "some/base"
    assert config.bnb_config_kwargs == {"bnb_4bit_quant_type": "fp4", "bnb_4bit_use_double_quant": True}
    assert config.lora_alpha == 128  # untouched


def test_unknown_key_refused_unless_allowed(traces):
    with pytest.raises(ConfigError, match="unknown config key 'wandb_project'.*known keys: adapter, attn_implementation, base_model"):
        build_axolotl_config(traces, "persistent", overrides={"wandb_project": "x"})
    config, unknown = build_axolotl_config(
        traces, "persistent", overrides={"wandb_project": "x", "special_tokens.pad_token": "<pad>"}, allow_unknown=True
    )
    assert unknown == {"wandb_project": "x", "special_tokens": {"pad_token": "<pad>"}}
    assert config_dict(config, unknown)["wandb_project"] == "x"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lora_r": 0}, "lora_r"),
        ({"lora_dropout": 1.5}, "lora_dropout"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"load_in_4bit": False}, "qlora needs load_in_4bit"),
        ({"micro_batch_size": -1}, "micro_batch_size"),
    ],
)
def test_bad_values_refused(traces, overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_axolotl_config(traces, "persistent", overrides=overrides)


def test_sharegpt_react_and_validation_files(tmp_path):
    sharegpt = write_traces(
        tmp_path / "sg.jsonl",
        [{"conversations": [{"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}], "runtime": "stateless"}],
    )
    config, _ = build_axolotl_config(sharegpt, "stateless")
    dataset = config.datasets[0]
    assert dataset.field_messages == "conversations"
    assert dataset.message_property_mappings == {"role": "from", "content": "value"}
    assert config.output_dir == "./outputs/stateless-student"

    react = write_traces(tmp_path / "react.jsonl", [{**codeact_record("stateless"), "agent": "react", "tools": []}])
    config, _ = build_axolotl_config(react, "react")
    assert config.datasets[0].field_tools == "tools"

    train = write_traces(tmp_path / "traces.jsonl", [codeact_record()])
    write_traces(tmp_path / "traces.val.jsonl", [codeact_record(task_id="knapsack-0000000009")])
    config, _ = build_axolotl_config(train, "persistent")
    assert config.val_set_size == 0.0
    assert config.test_datasets[0].path == str((tmp_path / "traces.val.jsonl").resolve())
    (tmp_path / "traces.val.jsonl").write_text("")  # an empty validation file is ignored
    config, _ = build_axolotl_config(train, "persistent")
    assert config.test_datasets is None and config.val_set_size == 0.05


def test_traces_checked_against_runtime(tmp_path):
    mixed = write_traces(tmp_path / "mixed.jsonl", [codeact_record("persistent"), codeact_record("stateless")])
    with pytest.raises(ConfigError, match=r"mixed.jsonl:2: a stateless episode in traces for the persistent student"):
        build_axolotl_config(mixed, "persistent")
    with pytest.raises(ConfigError, match="codeact episode in traces for the react student"):
        build_axolotl_config(write_traces(tmp_path / "c.jsonl", [codeact_record()]), "react")
    with pytest.raises(ConfigError, match="no such traces file"):
        build_axolotl_config(tmp_path / "missing.jsonl", "persistent")
    with pytest.raises(ConfigError, match="traces file is empty"):
        build_axolotl_config(write_traces(tmp_path / "empty.jsonl", []), "persistent")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ConfigError, match="bad.jsonl:1: not JSON"):
        build_axolotl_config(tmp_path / "bad.jsonl", "persistent")


def test_yaml_round_trip(traces, tmp_path):
    config, unknown = build_axolotl_config(traces, "persistent", overrides={"hub_model_id": "x/y"}, allow_unknown=True)
    out = write_axolotl_config(config, tmp_path / "cfg" / "persistent.yaml", unknown)
    data = yaml.safe_load(out.read_text())
    assert data == config_dict(config, unknown)
    assert out.read_text().startswith("# Axolotl QLoRA config for the persistent student")


@pytest.mark.skipif(importlib.util.find_spec("axolotl") is not None, reason="message differs with Axolotl installed")
def test_cli_axolotl_config(traces, tmp_path, capsys):
    out = tmp_path / "config.yaml"
    args = ["axolotl-config", "--traces", str(traces), "--runtime", "persistent", "--out", str(out)]
    assert main([*args, "--lora-r", "32", "--epochs", "2", "--learning-rate", "5e-5", "--set", "warmup_ratio=0.1"]) == 0
    assert "opaque-knapsack's checks (Axolotl not installed)" in capsys.readouterr().out
    data = yaml.safe_load(out.read_text())
    assert (data["lora_r"], data["num_epochs"], data["learning_rate"], data["warmup_ratio"]) == (32, 2, 5e-5, 0.1)
    assert main([*args, "--set", "nonsense_key=1"]) == 2
    assert "unknown config key 'nonsense_key'" in capsys.readouterr().err
    assert main([*args, "--set", "nonsense_key=1", "--allow-unknown"]) == 0
    assert yaml.safe_load(out.read_text())["nonsense_key"] == 1
