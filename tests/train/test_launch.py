"""train / serve: commands, --dry-run, and the messages when extras or a GPU are missing."""

from __future__ import annotations

import json

import pytest

from opaque_knapsack.cli import main
from opaque_knapsack.train import launch
from opaque_knapsack.train.launch import LaunchError, ServeSpec, check_ready, eval_hints, serve_command


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "persistent.yaml"
    path.write_text("base_model: x\n")
    return path


def test_train_dry_run_prints_the_axolotl_command(config, capsys):
    assert main(["train", str(config), "--dry-run", "--axolotl-args=--debug"]) == 0
    assert capsys.readouterr().out.strip() == f"axolotl train {config} --debug"


def test_train_without_extra_names_it(config, capsys, monkeypatch):
    monkeypatch.setattr(launch, "missing_modules", lambda modules: ["axolotl", "bitsandbytes"])
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "needs the 'train' extra (axolotl, bitsandbytes not installed)" in err
    assert "pip install 'opaque-knapsack[train]'" in err


def test_train_without_gpu_says_so(config, capsys, monkeypatch):
    monkeypatch.setattr(launch, "missing_modules", lambda modules: [])
    monkeypatch.setattr(launch, "cuda_available", lambda: False)
    assert main(["train", str(config)]) == 2
    assert "training needs a CUDA GPU, and none is visible here" in capsys.readouterr().err


def test_train_runs_axolotl_when_ready(config, monkeypatch):
    ran = []
    monkeypatch.setattr(launch, "missing_modules", lambda modules: [])
    monkeypatch.setattr(launch, "cuda_available", lambda: True)
    monkeypatch.setattr(launch, "run_command", lambda command: ran.append(command) or 0)
    assert main(["train", str(config)]) == 0
    assert ran == [["axolotl", "train", str(config)]]


def test_train_missing_config(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml"), "--dry-run"]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_check_ready_order():
    with pytest.raises(LaunchError, match=r"serve' extra \(vllm not installed\)"):
        check_ready(["vllm"], "serve", "serving", find_missing=lambda m: list(m), has_gpu=lambda: True)
    with pytest.raises(LaunchError, match="serving needs a CUDA GPU"):
        check_ready(["vllm"], "serve", "serving", find_missing=lambda m: [], has_gpu=lambda: False)
    check_ready(["vllm"], "serve", "serving", find_missing=lambda m: [], has_gpu=lambda: True)


def test_serve_command():
    spec = ServeSpec("Qwen/Qwen3-8B", {"persistent": "/a/p", "stateless": "/a/s"}, port=8123)
    command = serve_command(spec)
    assert command[:3] == ["vllm", "serve", "Qwen/Qwen3-8B"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags["--dtype"] == "bfloat16"
    assert flags["--max-model-len"] == "40960"
    assert flags["--port"] == "8123"
    assert json.loads(flags["--default-chat-template-kwargs"]) == {"enable_thinking": False}
    assert "--enable-lora" in command
    assert command[command.index("--max-lora-rank") + 1] == "64"
    lora_at = command.index("--lora-modules")
    assert command[lora_at + 1 : lora_at + 3] == ["persistent=/a/p", "stateless=/a/s"]
    assert "--enable-lora" not in serve_command(ServeSpec("Qwen/Qwen3-8B"))


def test_serve_passes_vllms_parallelism_through_and_batches_every_student():
    loras = {"persistent": "/a/p", "stateless": "/a/s", "react": "/a/r"}
    command = serve_command(ServeSpec("Qwen/Qwen3-8B", loras, tensor_parallel_size=2, data_parallel_size=4, max_loras=1))
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    assert command[command.index("--data-parallel-size") + 1] == "4"
    assert command[command.index("--max-loras") + 1] == "3"  # never fewer than the students: they share a batch
    roomy = serve_command(ServeSpec("m", loras, max_loras=8))
    assert roomy[roomy.index("--max-loras") + 1] == "8"
    plain = serve_command(ServeSpec("Qwen/Qwen3-8B", loras))
    assert "--tensor-parallel-size" not in plain and "--data-parallel-size" not in plain


def test_serve_cli_takes_the_parallelism_flags(capsys):
    argv = ["serve", "--base-model", "Qwen/Qwen3-8B", "--lora", "p=/a/p", "--tensor-parallel-size", "2",
            "--data-parallel-size", "2", "--max-loras", "4", "--dry-run"]
    assert main(argv) == 0
    command = capsys.readouterr().out.splitlines()[0]
    assert "--tensor-parallel-size 2 --data-parallel-size 2" in command and "--max-loras 4" in command
    assert main([*argv[:-2], "0", "--dry-run"]) == 2
    assert "--max-loras must be at least 1, got 0" in capsys.readouterr().err


def test_eval_hints_name_models_and_env():
    hints = eval_hints(ServeSpec("Qwen/Qwen3-8B", {"persistent": "/a/p"}, port=9000, api_key="k"))
    assert "export VLLM_BASE_URL=http://127.0.0.1:9000/v1" in hints
    assert "export VLLM_API_KEY=k" in hints
    assert "--model vllm/Qwen/Qwen3-8B:persistent" in hints
    assert "--model openai-api/student/persistent" in hints
    assert "export STUDENT_BASE_URL=http://127.0.0.1:9000/v1" in hints


def test_serve_dry_run_and_missing_extra(capsys, monkeypatch):
    assert main(["serve", "--lora", "persistent=/a/p", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "vllm serve Qwen/Qwen3-8B --dtype bfloat16 --max-model-len 40960" in out
    assert "--lora-modules persistent=/a/p" in out
    assert "--model vllm/Qwen/Qwen3-8B:persistent" in out
    monkeypatch.setattr(launch, "missing_modules", lambda modules: ["vllm"])
    assert main(["serve", "--lora", "persistent=/a/p"]) == 2
    assert "pip install 'opaque-knapsack[serve]'" in capsys.readouterr().err
    monkeypatch.setattr(launch, "missing_modules", lambda modules: [])
    monkeypatch.setattr(launch, "cuda_available", lambda: False)
    assert main(["serve"]) == 2
    assert "serving needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["persistent", "a/b=/p", "x:y=/p", "=/p"])
def test_serve_rejects_bad_lora(bad, capsys):
    assert main(["serve", "--lora", bad, "--dry-run"]) == 2
    assert "--lora" in capsys.readouterr().err
