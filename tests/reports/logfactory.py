"""Realistic Inspect logs for the reports tests, written with inspect_ai.log.

Each log looks like what ``opaque_knapsack/knapsack`` writes: task args
runtime/difficulty/agent, a ``knapsack_scorer`` dict score per sample, model
usage per sample, sample metadata task_id/difficulty, eval metadata "train".
The per-episode values are chosen by the test so the statistics are known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inspect_ai.log import (
    EvalConfig,
    EvalDataset,
    EvalLog,
    EvalResults,
    EvalSample,
    EvalSpec,
    write_eval_log,
)
from inspect_ai.model import ModelUsage
from inspect_ai.scorer import Score

from opaque_knapsack.records import SCORE_KEYS


def task_id(index: int) -> str:
    return f"knapsack-{index:010d}"


def episode(index: int, optimality: float, **overrides: float) -> dict[str, Any]:
    """One episode's score dict with plausible defaults derived from the index."""
    values: dict[str, Any] = {
        "id": task_id(index),
        "optimality": optimality,
        "solved": 1.0 if optimality == 1.0 else 0.0,
        "capacity_utilization": 0.9,
        "items_inspected": 10.0 + index,
        "steps": 5.0,
        "tool_calls": 12.0,
        "input_tokens": 1000.0,
        "output_tokens": 200.0,
        "total_tokens": 1200.0,
        "name_error_episode": 0.0,
        "name_error_count": 0.0,
        "state_utilization": 0.0,
        "reimport_rate": 0.0,
        "symbol_lifespan": 0.0,
        "total_time": 2.0,
    }
    values.update(overrides)
    if "total_tokens" not in overrides and ("input_tokens" in overrides or "output_tokens" in overrides):
        values["total_tokens"] = values["input_tokens"] + values["output_tokens"]
    return values


def write_log(
    path: Path,
    episodes: Sequence[Mapping[str, Any]],
    *,
    model: str = "mockllm/model",
    runtime: str | None = "persistent",
    difficulty: str | None = "easy",
    train: str | None = None,
    agent: str | None = "codeact",
    status: str = "success",
    dataset_size: int | None = None,
    epochs: int = 1,
    scorer: str = "knapsack_scorer",
    episode_score: bool = True,
) -> Path:
    """Write one eval log with the given episodes; returns its path (``episode_score=False``: each
    sample's score is the episode's optimality alone, as a scorer of another harness writes it)."""
    task_args: dict[str, Any] = {}
    if runtime is not None:
        task_args["runtime"] = runtime
    if difficulty is not None:
        task_args["difficulty"] = difficulty
    if agent is not None:
        task_args["agent"] = agent
    ids = [str(e["id"]) for e in episodes]
    size = dataset_size if dataset_size is not None else len({*ids})
    spec = EvalSpec(
        created=datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        task="opaque_knapsack/knapsack",
        task_args=task_args,
        dataset=EvalDataset(name="knapsack", samples=size),
        model=model,
        config=EvalConfig(epochs=epochs),
        metadata={"train": train} if train else None,
    )
    samples = [_sample(e, difficulty or "custom", scorer, model, episode_score) for e in episodes]
    log = EvalLog(
        status=status,  # type: ignore[arg-type]
        eval=spec,
        results=EvalResults(total_samples=size * epochs, completed_samples=len(samples)),
        samples=samples,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_eval_log(log, str(path))
    return path


def _sample(values: Mapping[str, Any], difficulty: str, scorer: str, model: str, episode_score: bool) -> EvalSample:
    score: Any = {k: float(values[k]) for k in SCORE_KEYS if k in values}
    if not episode_score:
        score = score["optimality"]
    usage = ModelUsage(
        input_tokens=int(values["input_tokens"]),
        output_tokens=int(values["output_tokens"]),
        total_tokens=int(values["input_tokens"] + values["output_tokens"]),
    )
    error = None
    if values.get("errored"):  # a provider error after Inspect's retries: no score
        from inspect_ai.log import EvalError

        error = EvalError(message="APIError: 500", traceback="", traceback_ansi="")
    return EvalSample(
        id=str(values["id"]),
        epoch=int(values.get("epoch", 1)),
        input="Pack the knapsack.",
        target="",
        metadata={"task_id": str(values["id"]), "difficulty": difficulty},
        scores=None if error else {scorer: Score(value=score)},
        error=error,
        model_usage={model: usage},
        total_time=float(values["total_time"]),
        working_time=float(values["total_time"]),
    )


# --- the 2x2 fixture: train {persistent, stateless} x runtime {persistent, stateless} ---

# Optimality per episode for six tasks; stateless->stateless lacks task 5.
OPTIMALITY: dict[tuple[str, str], list[float]] = {
    ("persistent", "persistent"): [1.0, 0.8, 0.6, 1.0, 0.5, 0.9],
    ("persistent", "stateless"): [0.2, 0.0, 0.6, 1.0, 0.1, 0.3],
    ("stateless", "persistent"): [1.0, 0.7, 0.6, 0.9, 0.5, 0.9],
    ("stateless", "stateless"): [1.0, 0.6, 0.6, 0.8, 0.4],
}
OUTPUT_TOKENS: dict[tuple[str, str], list[float]] = {
    ("persistent", "persistent"): [100, 200, 300, 400, 500, 600],
    ("persistent", "stateless"): [150, 250, 300, 450, 500, 700],
    ("stateless", "persistent"): [400, 800, 1200, 1600, 2000, 2400],
    ("stateless", "stateless"): [300, 600, 900, 1200, 1500],
}
NAME_ERROR: dict[tuple[str, str], list[float]] = {
    ("persistent", "persistent"): [0, 0, 0, 0, 0, 0],
    ("persistent", "stateless"): [1, 1, 0, 1, 1, 0],
    ("stateless", "persistent"): [0, 0, 0, 0, 0, 0],
    ("stateless", "stateless"): [0, 0, 0, 0, 0],
}
STATE_UTILIZATION: dict[tuple[str, str], list[float]] = {
    ("persistent", "persistent"): [1, 2, 0, 1, 1, 2],
    ("persistent", "stateless"): [0, 0, 0, 0, 0, 0],
    ("stateless", "persistent"): [0, 0, 1, 0, 0, 0],
    ("stateless", "stateless"): [0, 0, 0, 0, 0],
}
REIMPORT: dict[tuple[str, str], list[float]] = {
    ("persistent", "persistent"): [0, 0, 0, 0, 0, 0],
    ("persistent", "stateless"): [0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
    ("stateless", "persistent"): [1, 1, 1, 1, 1, 0.5],
    ("stateless", "stateless"): [1, 1, 1, 1, 1],
}
LIFESPAN: dict[tuple[str, str], list[float]] = {
    ("persistent", "persistent"): [2, 2, 3, 3, 4, 4],
    ("persistent", "stateless"): [5, 6, 5, 6, 5, 6],
    ("stateless", "persistent"): [0, 0, 1, 0, 0, 0],
    ("stateless", "stateless"): [0, 0, 0, 0, 0],
}
CONDITIONS = tuple(OPTIMALITY)


def condition_episodes(train: str, runtime: str) -> list[dict[str, Any]]:
    key = (train, runtime)
    return [
        episode(
            i,
            opt,
            output_tokens=float(OUTPUT_TOKENS[key][i]),
            input_tokens=float(10 * OUTPUT_TOKENS[key][i]),
            name_error_episode=float(NAME_ERROR[key][i]),
            name_error_count=float(2 * NAME_ERROR[key][i]),
            state_utilization=float(STATE_UTILIZATION[key][i]),
            reimport_rate=float(REIMPORT[key][i]),
            symbol_lifespan=float(LIFESPAN[key][i]),
            steps=float(4 + i),
            total_time=float(1 + i),
        )
        for i, opt in enumerate(OPTIMALITY[key])
    ]


def write_matrix(log_dir: Path, difficulty: str = "easy") -> dict[tuple[str, str], Path]:
    """The 2x2 matrix as four .eval logs; train from metadata or the scripted suffix."""
    paths = {}
    for train, runtime in CONDITIONS:
        # half the logs name train in metadata, half rely on the scripted model suffix
        use_metadata = runtime == "stateless"
        paths[(train, runtime)] = write_log(
            log_dir / f"{difficulty}_{train}_{runtime}.eval",
            condition_episodes(train, runtime),
            model=f"scripted/{train}",
            runtime=runtime,
            difficulty=difficulty,
            train=train if use_metadata else None,
        )
    return paths
