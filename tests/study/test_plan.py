"""`study plan`: the estimates against a hand computation, from the priors and from the study's own logs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from opaque_knapsack.cli import main
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.plan import GIVE_PRICES, estimate_study
from opaque_knapsack.study.spec import profile_spec

sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))

from logfactory import episode, write_log  # noqa: E402

FLASH = "google/gemini-2.5-flash"


def paper_study(tmp_path: Path, **estimates) -> Study:
    data = profile_spec("paper").model_dump(mode="json")
    data["estimates"].update(estimates)
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(data))
    return Study.load(path)


def by_stage(study: Study) -> dict:
    return {item.stage: item for item in estimate_study(study)}


def test_the_plan_from_the_priors_matches_a_hand_computation(tmp_path):
    study = paper_study(tmp_path, prices={FLASH: {"input": 0.30, "output": 2.50}}, gpu_hour=3.0)
    plan = by_stage(study)
    assert all(item.state.status in ("to run", "waiting") for item in plan.values())

    # teacher: 1,000 easy tasks x 2 runtimes, each episode the prior's 8 turns, 60k in, 6k out, 120 s
    teacher = plan["teacher"]
    assert teacher.episodes == 2000 and teacher.turns == 16_000
    assert teacher.input_tokens == 120_000_000 and teacher.output_tokens == 12_000_000
    assert teacher.cost == pytest.approx(120 * 0.30 + 12 * 2.50)  # $66
    assert teacher.seconds == 2000 / 20 * 120  # 20 connections to one model
    assert teacher.basis == [f"{FLASH}: prior", f"{FLASH}: prior"]

    # train: 950 conversations (5% held out) of 2 x 60k/8 + 6k/8 = 15,750 tokens, 3 epochs, per student
    train = plan["train"]
    tokens = 2 * 950 * 15_750 * 3
    assert train.seconds == pytest.approx(tokens / 2500)
    assert train.gpu_hours == pytest.approx(tokens / 2500 / 3600)  # 9.975
    assert train.cost == pytest.approx(train.gpu_hours * 3.0)

    # matrix: 3 students x 2 runtimes x 200 tasks; served, so generation-bound: 9.6M output tokens at 1,500/s
    matrix = plan["matrix"]
    assert matrix.episodes == 1200 and matrix.turns == 12_000
    assert matrix.input_tokens == 1200 * 80_000 and matrix.output_tokens == 1200 * 8_000
    assert matrix.seconds == pytest.approx(9_600_000 / 1500)
    assert matrix.gpu_hours == pytest.approx(9_600_000 / 1500 / 3600)
    assert matrix.cost == pytest.approx(matrix.gpu_hours * 3.0)

    assert plan["tasks"].seconds == pytest.approx(1200 * 0.005)
    assert plan["export"].seconds == pytest.approx(2000 * 0.04)


def test_a_missing_price_says_give_prices(tmp_path, capsys):
    study = paper_study(tmp_path)
    plan = by_stage(study)
    assert plan["teacher"].cost is None and plan["train"].cost is None
    assert main(["study", "plan", str(study.spec_path)]) == 0
    out = capsys.readouterr().out
    assert GIVE_PRICES in out and "prior" in out


def test_logged_episodes_replace_the_prior_and_count_as_done(tmp_path):
    study = paper_study(tmp_path, prices={FLASH: {"input": 0.30, "output": 2.50}})
    logged = [episode(index, 1.0, steps=5.0, input_tokens=1000.0, output_tokens=200.0, total_time=2.0) for index in range(3)]
    write_log(study.folder.teacher_logs / "limited.eval", logged, model=FLASH, runtime="persistent", dataset_size=1000)
    teacher = by_stage(study)["teacher"]
    assert teacher.basis == [f"{FLASH}: 3 logged episodes"] * 2
    assert teacher.episodes == 997 + 1000  # the 3 logged persistent episodes are done
    assert teacher.turns == 1997 * 5
    assert teacher.input_tokens == 1997 * 1000 and teacher.output_tokens == 1997 * 200
    assert teacher.cost == pytest.approx(1.997 * 0.30 + 0.3994 * 2.50)
    assert teacher.seconds == pytest.approx(100 * 2.0)  # ceil(1997 / 20) rounds of 2 s
