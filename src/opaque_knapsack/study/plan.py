"""`study plan`: every stage, what is done, and what the rest will take, before anything runs.

For each remaining stage: episodes, model turns, input and output tokens,
cost, GPU-hours and wall time. The per-episode figures come from the
study's own logs when it has some (e.g. after `study run --until teacher
--limit 5`), else from the priors in the spec's `estimates` section; the plan
says which. The arithmetic, written once here:

- evaluation stage: episodes x (turns, input tokens, output tokens) per
  episode, per model; cost = tokens / 1e6 x the model's price per million
  (models of offline providers cost nothing; a model without a price makes
  the cost "give prices"); wall = ceil(episodes / concurrency) x seconds per
  episode, concurrency = max_connections x distinct models (capped at the
  episodes), and for served students at least output tokens / (serving
  output tokens per second x serving GPUs); GPU-hours of serving = that wall
  x serving GPUs.
- training: per student, conversations = teacher episodes x (1 - the
  validation share), tokens per conversation = its final prompt plus reply,
  estimated as 2 x input tokens per turn + output tokens per turn (the
  prompt grows about linearly over an episode, so the last is about twice the
  mean), at most the sequence length; trained tokens = conversations x tokens
  x epochs, capped at max_steps x micro batch x gradient accumulation x
  sequence length when max_steps is set; wall = tokens / (training tokens per
  second x GPUs); GPU-hours = wall x GPUs; cost = GPU-hours x the GPU-hour
  price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from opaque_knapsack.records import SCRIPTED_PROVIDER, ScoreKey
from opaque_knapsack.study import adapters
from opaque_knapsack.study.bookkeeping import StageState
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.runner import study_states
from opaque_knapsack.study.spec import EpisodePrior

__all__ = ["EpisodeFigures", "StageEstimate", "estimate_study", "render_plan"]

OFFLINE_PROVIDERS = (SCRIPTED_PROVIDER, "mockllm")
"""Model providers that run in this process and cost nothing."""
TASK_SECONDS = 0.005
"""Generating and checking one instance (1,000 take a few seconds)."""
EXPORT_SECONDS = 0.04
"""Exporting one episode (800 take about half a minute)."""
REPORT_SECONDS = 30.0
GIVE_PRICES = "cost: give prices"


@dataclass(frozen=True)
class EpisodeFigures:
    """One episode's expected turns, tokens and time, and where the figures come from."""

    turns: float
    input_tokens: float
    output_tokens: float
    seconds: float
    source: str

    @classmethod
    def prior(cls, prior: EpisodePrior) -> EpisodeFigures:
        return cls(prior.turns, prior.input_tokens, prior.output_tokens, prior.seconds, "prior")


@dataclass
class StageEstimate:
    """What a remaining stage is expected to take (zeros for a done one)."""

    stage: str
    state: StageState
    episodes: int = 0
    turns: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    cost: float | None = 0.0
    gpu_hours: float = 0.0
    seconds: float = 0.0
    basis: list[str] = field(default_factory=list)

    def add_tokens(self, episodes: int, figures: EpisodeFigures) -> None:
        self.episodes += episodes
        self.turns += episodes * figures.turns
        self.input_tokens += episodes * figures.input_tokens
        self.output_tokens += episodes * figures.output_tokens

    def add_cost(self, amount: float | None) -> None:
        self.cost = None if amount is None or self.cost is None else self.cost + amount


def estimate_study(study: Study) -> list[StageEstimate]:
    """Every stage with its state; the remaining ones with their estimates."""
    estimates = []
    logged = _LoggedFigures(study)
    for state in study_states(study):
        estimate = StageEstimate(state.stage, state)
        if not state.done:
            ESTIMATORS[state.stage](study, estimate, logged)
        estimates.append(estimate)
    return estimates


# -- figures per episode: the study's logs, else the priors -------------------------------------


class _LoggedFigures:
    """Per-episode means of the study's logs, by stage and model (read once)."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self._frames: dict[str, Any] = {}

    def frame(self, stage: str) -> Any:
        if stage not in self._frames:
            folder = self.study.folder.teacher_logs if stage == "teacher" else self.study.folder.matrix_logs
            self._frames[stage] = adapters.episodes(folder) if any(folder.glob("*.eval")) else None
        return self._frames[stage]

    def figures(self, stage: str, model: str, prior: EpisodePrior) -> EpisodeFigures:
        frame = self.frame(stage)
        rows = frame[(frame["model"] == model) & ~frame["errored"].astype(bool)] if frame is not None else None
        if rows is None or rows.empty:
            return EpisodeFigures.prior(prior)
        return EpisodeFigures(
            turns=float(rows[ScoreKey.STEPS].mean()),
            input_tokens=float(rows[ScoreKey.INPUT_TOKENS].mean()),
            output_tokens=float(rows[ScoreKey.OUTPUT_TOKENS].mean()),
            seconds=float(rows["total_time"].mean()),
            source=f"{len(rows)} logged episodes",
        )

    def done(self, stage: str, model: str, runtime: str | None = None) -> int:
        """Episodes of MODEL already logged (not errored) in STAGE's logs: the plan counts only the rest."""
        frame = self.frame(stage)
        if frame is None:
            return 0
        rows = frame[(frame["model"] == model) & ~frame["errored"].astype(bool)]
        if runtime is not None:
            rows = rows[rows["runtime"] == runtime]
        return int(len(rows))


def _price(study: Study, model: str, input_tokens: float, output_tokens: float) -> float | None:
    if model.split("/", 1)[0] in OFFLINE_PROVIDERS:
        return 0.0
    price = study.spec.estimates.prices.get(model)
    if price is None:
        return None
    return input_tokens / 1e6 * price.input + output_tokens / 1e6 * price.output


def _wall(episodes: int, seconds: float, connections: int | None, models: int) -> float:
    concurrency = max(1, min(episodes, (connections or 1) * max(models, 1)))
    return math.ceil(episodes / concurrency) * seconds if episodes else 0.0


def _count(study: Study, task_set: Any, folder: Any) -> int:
    if task_set.num is not None:
        return int(task_set.num)
    return len(adapters.task_files(folder)) if folder.exists() else 0


# -- the stages ----------------------------------------------------------------------------------


def _tasks(study: Study, estimate: StageEstimate, logged: _LoggedFigures) -> None:
    instances = sum(_count(study, task_set, folder) for task_set, folder in study.all_task_sets())
    estimate.seconds = instances * TASK_SECONDS
    estimate.basis.append(f"{instances} instances")


def _teacher(study: Study, estimate: StageEstimate, logged: _LoggedFigures) -> None:
    section = study.spec.teacher
    tasks = _count(study, study.spec.tasks.teacher, study.teacher_tasks())
    seconds = 0.0
    for runtime in section.runtimes:
        model = section.model_for(runtime)
        figures = logged.figures("teacher", model, study.spec.estimates.teacher_prior)
        episodes = max(0, tasks - logged.done("teacher", model, runtime))
        estimate.add_tokens(episodes, figures)
        estimate.add_cost(_price(study, model, episodes * figures.input_tokens, episodes * figures.output_tokens))
        seconds = max(seconds, figures.seconds)
        estimate.basis.append(f"{model}: {figures.source}")
    models = len({section.model_for(runtime) for runtime in section.runtimes})
    estimate.seconds = _wall(estimate.episodes, seconds, section.max_connections, models)


def _export(study: Study, estimate: StageEstimate, logged: _LoggedFigures) -> None:
    episodes = _count(study, study.spec.tasks.teacher, study.teacher_tasks()) * len(study.spec.teacher.runtimes)
    estimate.seconds = episodes * EXPORT_SECONDS
    estimate.basis.append(f"{episodes} teacher episodes")


def training_settings(study: Study) -> dict[str, Any]:
    """The Axolotl values the students train with: the profile's, then the spec's overrides."""
    return {**adapters.profile_values(study.spec.students.profile), **study.spec.students.overrides}


def _train(study: Study, estimate: StageEstimate, logged: _LoggedFigures) -> None:
    estimates = study.spec.estimates
    settings = training_settings(study)
    sequence = int(settings["sequence_len"])
    conversations = _count(study, study.spec.tasks.teacher, study.teacher_tasks()) * (1 - study.spec.export.val_fraction)
    trained = 0.0
    for runtime in study.spec.trained():
        figures = logged.figures("teacher", study.spec.teacher.model_for(runtime), estimates.teacher_prior)
        per_turn = (2 * figures.input_tokens + figures.output_tokens) / figures.turns if figures.turns else 0.0
        tokens = conversations * min(per_turn, sequence) * float(settings["num_epochs"])
        if settings.get("max_steps"):
            cap = int(settings["max_steps"]) * int(settings["micro_batch_size"]) * int(settings["gradient_accumulation_steps"]) * sequence
            tokens = min(tokens, cap)
        trained += tokens
        estimate.basis.append(f"{runtime}: {conversations:.0f} conversations of ~{min(per_turn, sequence):,.0f} tokens ({figures.source})")
    estimate.seconds = trained / (estimates.training_tokens_per_second * max(estimates.training_gpus, 1))
    estimate.gpu_hours = estimate.seconds * estimates.training_gpus / 3600
    estimate.add_cost(_gpu_cost(study, estimate.gpu_hours))
    estimate.basis.append(f"{trained:,.0f} trained tokens")


def _gpu_cost(study: Study, gpu_hours: float) -> float | None:
    if not gpu_hours:
        return 0.0
    price = study.spec.estimates.gpu_hour
    return None if price is None else gpu_hours * price


def _matrix(study: Study, estimate: StageEstimate, logged: _LoggedFigures) -> None:
    from opaque_knapsack.study.serving import student_models

    spec, estimates = study.spec, study.spec.estimates
    tasks = sum(_count(study, task_set, folder) for task_set, folder in zip(spec.eval_sets(), study.eval_tasks().values(), strict=True))
    served = set(spec.served())
    seconds, served_output = 0.0, 0.0
    for label, model in student_models(study).items():
        figures = logged.figures("matrix", model, estimates.student_prior)
        episodes = max(0, tasks * len(spec.matrix.runtimes) - logged.done("matrix", model))
        estimate.add_tokens(episodes, figures)
        seconds = max(seconds, figures.seconds)
        if label in served:
            served_output += episodes * figures.output_tokens
        else:
            estimate.add_cost(_price(study, model, episodes * figures.input_tokens, episodes * figures.output_tokens))
        estimate.basis.append(f"{label} ({model}): {figures.source}")
    estimate.seconds = _wall(estimate.episodes, seconds, spec.matrix.max_connections, len(spec.matrix.students))
    if served:
        generating = served_output / (estimates.serving_output_tokens_per_second * max(estimates.serving_gpus, 1))
        estimate.seconds = max(estimate.seconds, generating)
        estimate.gpu_hours = estimate.seconds * estimates.serving_gpus / 3600
        estimate.add_cost(_gpu_cost(study, estimate.gpu_hours))


def _report(study: Study, estimate: StageEstimate, logged: _LoggedFigures) -> None:
    estimate.seconds = REPORT_SECONDS


ESTIMATORS = {"tasks": _tasks, "teacher": _teacher, "export": _export, "train": _train, "matrix": _matrix, "report": _report}


# -- printing ----------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _money(cost: float | None) -> str:
    return GIVE_PRICES if cost is None else f"${cost:,.2f}"


def render_plan(estimates: list[StageEstimate]) -> Any:
    """The plan as a rich table plus the reasons and bases, for the terminal."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Study plan (estimates for the stages still to run)")
    for column in ("stage", "state", "episodes", "turns", "input tokens", "output tokens", "cost", "GPU-hours", "wall time"):
        table.add_column(column, justify="left" if column in ("stage", "state") else "right")
    total = StageEstimate("total", StageState("total", "to run"))
    for item in estimates:
        if item.state.done:
            table.add_row(item.stage, "done", *["-"] * 7)
            continue
        table.add_row(
            item.stage, item.state.status, f"{item.episodes:,}", f"{item.turns:,.0f}", f"{item.input_tokens:,.0f}",
            f"{item.output_tokens:,.0f}", _money(item.cost), f"{item.gpu_hours:,.1f}", _duration(item.seconds),
        )  # fmt: skip
        total.add_cost(item.cost)
        total.gpu_hours += item.gpu_hours
        total.seconds += item.seconds
    table.add_row("total", "", "", "", "", "", _money(total.cost), f"{total.gpu_hours:,.1f}", _duration(total.seconds))
    notes = []
    for item in estimates:
        if item.state.reasons:
            notes.append(Text(f"{item.stage}: {item.state.line()}"))
        for basis in item.basis:
            notes.append(Text(f"  {item.stage} estimate: {basis}", style="dim"))
    return Group(table, *notes)
