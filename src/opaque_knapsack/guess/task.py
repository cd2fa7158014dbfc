"""The ``opaque_knapsack/guess`` Inspect task."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.solver import Solver

from opaque_knapsack.guess.episode import guess_setup
from opaque_knapsack.guess.family import GUESS
from opaque_knapsack.guess.generator import RANGES, GuessInstance, GuessTaskError, make_instance, read_instances
from opaque_knapsack.guess.scorer import guess_scorer
from opaque_knapsack.records import CODEACT, DIFFICULTY_METADATA_KEY, Agent, Runtime
from opaque_knapsack.solvers.agent_options import AgentOptions
from opaque_knapsack.solvers.prompts import Prompts
from opaque_knapsack.solvers.turns import DROP, CutOff
from opaque_knapsack.task_options import TaskOptionError, checked_options, choice, whole_number


@task(version=1)
@checked_options(GUESS.name)
def guess(
    tasks: str | None = None, difficulty: str | None = None, num: int = 10, seed_start: int = 0,
    runtime: Runtime | None = None, agent: Agent = CODEACT, max_turns: int = 10, max_tool_calls: int | None = None,
    step_timeout: float | None = None, prompts: str | None = None, cut_off: CutOff = DROP, solver: Solver | None = None,
) -> Task:  # fmt: skip
    """Guess the number: find a hidden whole number with guess(n) -> higher, lower or correct.

    Args:
        tasks: Task files (``opaque-knapsack generate --family guess``): one
            file, a folder of them or a tasks root. When omitted, `num`
            instances of `difficulty` are made from `seed_start`.
        difficulty: easy (1 to 100; the default) or hard (1 to 1,000,000).
        num: Number of instances to make (without `tasks`).
        seed_start: Seed of the first instance made.
        runtime: persistent (the default) or stateless, for the CodeAct agent.
        agent: codeact (code blocks in the runtime) or react (native tool calls).
        max_turns: Assistant replies per episode.
        max_tool_calls: Tool calls per code block (per reply for react; default: the sandbox config's).
        step_timeout: Wall-time limit per code block, in seconds (default: the sandbox config's).
        prompts: A YAML or JSON prompts file (see ``opaque_knapsack.solvers.prompts.Prompts``).
        cut_off: A reply that did not end normally: ``drop`` (the paper's loop) or ``run``.
        solver: Replace the agent (the hidden number is still set up).
    """
    options = AgentOptions.checked(
        runtime=runtime, agent=agent, max_turns=max_turns, max_tool_calls=max_tool_calls,
        step_timeout=step_timeout, cut_off=cut_off, prompts=prompts,
    )  # fmt: skip
    prompt_set = options.prompt_set(GUESS)
    if tasks is not None:
        instances = _task_files(tasks)
        label = _label(instances, difficulty)
    else:
        label = choice("difficulty", difficulty or next(iter(RANGES)), tuple(RANGES))
        first = whole_number("seed_start", seed_start, 0)
        instances = [make_instance(label, i, first + i) for i in range(whole_number("num", num, 1))]
    return Task(
        dataset=MemoryDataset([_sample(instance, prompt_set) for instance in instances], name=f"guess-{label}"),
        setup=guess_setup(require_runtime=options.needs_runtime),
        solver=solver or options.solver(),
        scorer=guess_scorer(),
        sandbox=options.sandbox,
        metadata=options.metadata(GUESS, label),
    )


def _sample(instance: GuessInstance, prompts: Prompts) -> Sample:
    return Sample(
        id=instance.task_id,
        input=prompts.family_text(GUESS, "task_statement", {"low": instance.low, "high": instance.high}),
        target=str(instance.secret),
        metadata={DIFFICULTY_METADATA_KEY: instance.preset, "seed": instance.seed, "low": instance.low,
                  "high": instance.high, "secret": instance.secret},
    )  # fmt: skip


def _task_files(path: str) -> list[GuessInstance]:
    try:
        return read_instances(path)
    except GuessTaskError as error:
        raise TaskOptionError("tasks", path, f"cannot be read: {error}") from None


def _label(instances: list[GuessInstance], difficulty: str | None) -> str:
    """The files' preset; a ``difficulty`` that contradicts it is an error."""
    presets = sorted({instance.preset for instance in instances})
    label = presets[0] if len(presets) == 1 else "mixed"
    if difficulty is not None and difficulty != label:
        raise TaskOptionError("difficulty", difficulty, f"contradicts the task files, which are {label!r}")
    return label
