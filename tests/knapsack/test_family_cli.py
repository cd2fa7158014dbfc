"""`opaque-knapsack generate` and `validate`: atomic, resumable, worker-independent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from opaque_knapsack.cli import main
from opaque_knapsack.knapsack import PRESETS, generate_instance, instance_json
from opaque_knapsack.knapsack.writer import write_atomic


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "tasks" / "knapsack").iterdir())}


def generate(out: Path, *extra: str) -> int:
    return main(["generate", "--preset", "easy", "--num", "20", "--seed-start", "100", "--out", str(out), "--quiet", *extra])


def test_generate_writes_files_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generate(tmp_path) == 0
    written = files(tmp_path)
    assert list(written) == [f"knapsack-{i:010d}.json" for i in range(20)]
    assert written["knapsack-0000000003.json"].decode() == instance_json(generate_instance(PRESETS["easy"], 3, 103))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["settings"]["preset"] == "easy" and manifest["settings"]["seed_start"] == 100
    assert manifest["counts"] == {"written": 20, "kept": 0, "rewritten": 0}
    assert {"generated_at", "host", "package_version"} <= manifest.keys()
    import hashlib

    assert manifest["files"]["tasks/knapsack/knapsack-0000000003.json"] == hashlib.sha256(
        written["knapsack-0000000003.json"]).hexdigest()
    assert "20 written, 0 kept, 0 rewritten" in capsys.readouterr().out


def test_resume_rewrites_only_damaged_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path)
    original = files(tmp_path)
    folder = tmp_path / "tasks" / "knapsack"
    truncated = folder / "knapsack-0000000004.json"
    truncated.write_bytes(original[truncated.name][:50])
    (folder / "knapsack-0000000007.json").unlink()
    (folder / ".partial-knapsack-0000000009.json.999.tmp").write_text("{", encoding="utf-8")
    before = os.stat(folder / "knapsack-0000000001.json").st_mtime_ns
    capsys.readouterr()
    assert generate(tmp_path) == 0
    assert "1 written, 18 kept, 1 rewritten" in capsys.readouterr().out
    assert files(tmp_path) == original
    assert os.stat(folder / "knapsack-0000000001.json").st_mtime_ns == before


def test_atomic_write_leaves_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.json"
    target.write_bytes(b"old")

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # a kill between write and rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.slow
def test_worker_count_does_not_change_bytes(tmp_path: Path) -> None:
    assert generate(tmp_path / "one", "--workers", "1") == 0
    assert generate(tmp_path / "two", "--workers", "2") == 0
    assert files(tmp_path / "one") == files(tmp_path / "two")


def test_validate_reports_tampered_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path)
    assert main(["validate", str(tmp_path)]) == 0
    assert "20 task files checked (schema and optimum): 20 ok, 0 bad" in capsys.readouterr().out
    folder = tmp_path / "tasks" / "knapsack"
    tampered = folder / "knapsack-0000000005.json"
    data = json.loads(tampered.read_text())
    ref = data["reference"]
    dropped = ref["optimal_item_ids"].pop()
    ref["optimal_value"] -= data["private"]["items"][dropped]["value"]
    ref["optimal_weight"] -= data["private"]["items"][dropped]["weight"]
    data["difficulty"]["optimal_set_size"] -= 1
    tampered.write_text(json.dumps(data))
    broken = folder / "knapsack-0000000006.json"
    data = json.loads(broken.read_text())
    data["public"]["inspect_budget"] = 99
    broken.write_text(json.dumps(data))
    assert main(["validate", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{tampered}: reference.optimal_value: ") and "is not the optimum" in lines[0]
    assert lines[1].startswith(f"{broken}: public.inspect_budget: 99 is larger than the number of items")
    assert lines[-1] == "20 task files checked (schema and optimum): 18 ok, 2 bad"
    assert main(["validate", str(tmp_path), "--skip-optimum"]) == 1


def test_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"n_items": [5, 9], "weight": [1, 3], "value": [1, 3], "num_classes": 2,
                                  "num_allowed_classes": 3, "capacity_ratio": [0.3, 0.4]}))
    assert main(["generate", "--config", str(config), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: num_allowed_classes: 3 must be between 1 and the number of classes (2)" in err
    assert not (tmp_path / "o").exists()  # refused before any work
    assert main(["generate", "--preset", "easy", "--config", str(config), "--out", str(tmp_path)]) == 2
    assert main(["validate", str(tmp_path / "empty")]) == 2
