"""Fixture logs for the train tests, built once per session with the fake task."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fake_knapsack  # noqa: E402


@dataclass
class FixtureLogs:
    """Paths of the session's fixture logs (one directory each)."""

    persistent: Path  # tasks 0-3, 4 turns, metadata train=persistent
    persistent_short: Path  # tasks 0-1 again, 3 turns (fewer tokens), same scores
    persistent_worse: Path  # tasks 2-3 again, 3 turns, lower optimality
    stateless: Path  # tasks 0-3, stateless runtime
    react: Path  # tasks 0-1, ReAct with tool calls and one tool error
    errored: Path  # tasks 10-11, ended on a model error
    other_task: Path  # a log of some other task


def _dir_of(log) -> Path:
    return Path(log.location).parent


@pytest.fixture(scope="session")
def fixture_logs(tmp_path_factory: pytest.TempPathFactory) -> FixtureLogs:
    root = tmp_path_factory.mktemp("logs")

    def run(directory: str, **kwargs) -> Path:
        return _dir_of(fake_knapsack.run_fake(root / directory, **kwargs))

    return FixtureLogs(
        persistent=run("persistent", runtime="persistent", num=4, turns=4, metadata={"train": "persistent"}),
        persistent_short=run("persistent_short", runtime="persistent", num=2, turns=3),
        persistent_worse=run("persistent_worse", runtime="persistent", num=2, seed_start=2, turns=3, quality=0.5),
        stateless=run("stateless", runtime="stateless", num=4, turns=4),
        react=run("react", runtime="stateless", agent="react", num=2, turns=5),
        errored=run("errored", runtime="persistent", num=2, seed_start=10, end_reason="model_error"),
        other_task=run("other", runtime="persistent", num=1, name="some_other_task"),
    )


@dataclass
class RealLogs:
    """Logs of the real opaque_knapsack/knapsack task run by the scripted policies."""

    persistent: Path  # scripted/persistent in the persistent runtime
    stateless: Path  # scripted/stateless in the stateless runtime
    react: Path  # scripted/persistent as a ReAct agent


@pytest.fixture(scope="session")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> RealLogs:
    from inspect_ai import eval as inspect_eval

    root = tmp_path_factory.mktemp("real")

    def run(directory: str, model: str, **task_args) -> Path:
        [log] = inspect_eval(
            "opaque_knapsack/knapsack",
            model=model,
            task_args={"num": 3, **task_args},
            log_dir=str(root / directory),
            display="none",
        )
        assert log.status == "success", log.error.message if log.error else log.status
        return Path(log.location)

    return RealLogs(
        persistent=run("persistent", "scripted/persistent", runtime="persistent"),
        stateless=run("stateless", "scripted/stateless", runtime="stateless"),
        react=run("react", "scripted/persistent", runtime="persistent", agent="react"),
    )
