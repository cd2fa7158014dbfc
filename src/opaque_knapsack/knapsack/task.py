"""The ``opaque_knapsack/knapsack`` Inspect task."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.solver import Solver

from opaque_knapsack.knapsack import TaskFileError
from opaque_knapsack.knapsack.dataset import dataset_from_path, generated_instances, knapsack_dataset
from opaque_knapsack.knapsack.episode import knapsack_setup
from opaque_knapsack.knapsack.family import KNAPSACK
from opaque_knapsack.knapsack.labels import DifficultyMismatch
from opaque_knapsack.knapsack.presets import DEFAULT_PRESET, PRESET_NAMES
from opaque_knapsack.knapsack.scorer import knapsack_scorer
from opaque_knapsack.records import CODEACT, TASK_NAME, Agent, Runtime
from opaque_knapsack.solvers.agent_options import AgentOptions
from opaque_knapsack.solvers.turns import DROP, CutOff
from opaque_knapsack.task_options import TaskOptionError, checked_options, choice, flag, whole_number


@task(version=1)
@checked_options(TASK_NAME)
def knapsack(
    tasks: str | None = None,
    difficulty: str | None = None,
    num: int = 10,
    seed_start: int = 0,
    runtime: Runtime | None = None,
    agent: Agent = CODEACT,
    max_turns: int | None = None,
    max_tool_calls: int | None = None,
    step_timeout: float | None = None,
    strict_take: bool = True,
    prompts: str | None = None,
    cut_off: CutOff = DROP,
    solver: Solver | None = None,
) -> Task:
    """Opaque Knapsack: a partially observable 0/1 knapsack solved through tools.

    Args:
        tasks: Task files to evaluate: one file, a directory of files, or a
            tasks root (DIR/tasks/knapsack/*.json). When omitted, `num`
            instances of `difficulty` are generated deterministically.
        difficulty: Preset to generate (easy, medium, hard; default easy).
            With `tasks`, the label comes from the files' manifest or the
            files themselves; a difficulty that contradicts it is an error.
        num: Number of instances to generate (without `tasks`).
        seed_start: Seed of the first generated instance (instance i has seed
            seed_start + i).
        runtime: Python runtime semantics for the CodeAct agent: persistent
            (state survives between steps; the default) or stateless (fresh
            every step). ``--sandbox persistent_python|stateless_python`` also
            selects it; each sample records the runtime it ran in.
        agent: codeact (code blocks in the runtime) or react (native tool calls).
        max_turns: Assistant replies per episode (default: the paper's, see
            ``opaque_knapsack.limits.EpisodeLimits``).
        max_tool_calls: Tool calls per code block (per reply for react).
            Default: the runtime's sandbox config (``RuntimeConfig``), whose
            own default is the paper's.
        step_timeout: Wall-time limit per code block, in seconds. Default:
            the runtime's sandbox config, as for ``max_tool_calls``.
        strict_take: Refuse takes of items not inspected first (false: the
            paper's lax rule).
        prompts: A YAML or JSON prompts file: system prompt templates,
            runtime notes, tool docs, the task statement and few-shot turns
            (see ``opaque_knapsack.solvers.prompts.Prompts``). Default: the
            package's prompts.
        cut_off: A reply that did not end normally (token limit, content
            filter): ``drop`` (the paper's loop: not run, not kept, not
            counted; the model is asked to continue and the turn is spent) or
            ``run`` (run and counted like any other reply).
        solver: Replace the agent (the hidden environment is still set up).
    """
    options = AgentOptions.checked(
        runtime=runtime, agent=agent, max_turns=max_turns, max_tool_calls=max_tool_calls,
        step_timeout=step_timeout, cut_off=cut_off, prompts=prompts,
    )  # fmt: skip
    num = whole_number("num", num, 1)
    seed_start = whole_number("seed_start", seed_start, 0)
    strict_take = flag("strict_take", strict_take)
    prompt_set = options.prompt_set(KNAPSACK)
    if tasks is not None:
        try:
            dataset, difficulty = dataset_from_path(tasks, difficulty, prompt_set)
        except TaskFileError as error:
            raise TaskOptionError("tasks", tasks, f"cannot be read: {error}") from None
        except DifficultyMismatch as error:
            contradiction = "contradicts " + str(error).split(" contradicts ", 1)[-1]
            raise TaskOptionError("difficulty", difficulty, contradiction) from None
    else:
        difficulty = choice("difficulty", difficulty or DEFAULT_PRESET, PRESET_NAMES)
        dataset = knapsack_dataset(
            generated_instances(difficulty, num, seed_start),
            difficulty,
            name=f"knapsack-{difficulty}-{seed_start}-{num}",
            prompts=prompt_set,
        )
    return Task(
        dataset=dataset,
        setup=knapsack_setup(strict_take=strict_take, require_runtime=options.needs_runtime),
        solver=solver or options.solver(),
        scorer=knapsack_scorer(),
        sandbox=options.sandbox,
        metadata=options.metadata(KNAPSACK, difficulty),
    )
