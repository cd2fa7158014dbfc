"""The tiny model without torch in the harness: built by another environment's Python, or a one-line error."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from opaque_knapsack.cli import main


def traces(tmp_path: Path) -> Path:
    path = tmp_path / "traces.jsonl"
    lines = [{"messages": [{"role": "user", "content": f"task {i} please"}, {"role": "assistant", "content": f"ok {i} done"}]}
             for i in range(20)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_without_torch_here_the_error_names_the_extra_and_the_way_around(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert main(["tiny-model", "--out", str(tmp_path / "m"), "--traces", str(traces(tmp_path))]) == 2
    err = one_line(capsys)
    assert "needs torch, which this Python lacks: pip install 'opaque-knapsack[cpu-train]'" in err
    assert "or pass --python PATH" in err
    assert not (tmp_path / "m").exists()


def test_a_python_that_cannot_build_it_is_one_line(tmp_path, capsys):
    broken = tmp_path / "env" / "bin" / "python"
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
    broken.chmod(0o755)
    assert main(["tiny-model", "--out", str(tmp_path / "m"), "--traces", str(traces(tmp_path)), "--python", str(tmp_path / "env")]) == 2
    assert f"--python {tmp_path / 'env'}: building the model with {broken} failed: ModuleNotFoundError: No module named 'torch'" in one_line(capsys)


@pytest.mark.train
@pytest.mark.slow
def test_another_python_builds_it_from_this_package_alone(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "model"
    assert main(["tiny-model", "--out", str(out), "--traces", str(traces(tmp_path)), "--python", sys.executable,
                 "--max-position-embeddings", "1024"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
