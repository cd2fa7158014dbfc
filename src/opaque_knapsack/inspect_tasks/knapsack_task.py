"""The ``opaque_knapsack/knapsack`` Inspect task."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.solver import Solver

from opaque_knapsack.family import TaskFileError
from opaque_knapsack.family.labels import DifficultyMismatch
from opaque_knapsack.family.names import DEFAULT_PRESET, PRESET_NAMES
from opaque_knapsack.inspect_tasks.dataset import dataset_from_path, generated_instances, knapsack_dataset
from opaque_knapsack.inspect_tasks.options import TaskOptionError, choice, flag, positive_seconds, whole_number
from opaque_knapsack.records import (
    AGENT_METADATA_KEY,
    AGENTS,
    CODEACT,
    DIFFICULTY_METADATA_KEY,
    PERSISTENT,
    RUNTIME_METADATA_KEY,
    RUNTIMES,
    SEMANTICS,
    Agent,
    Runtime,
)
from opaque_knapsack.scorers import knapsack_scorer
from opaque_knapsack.solvers import codeact, knapsack_setup, react
from opaque_knapsack.solvers.prompts import Prompts, PromptsError, load_prompts
from opaque_knapsack.solvers.turns import CUT_OFF_MODES, DROP, CutOff


@task(version=1)
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
    if runtime is not None:
        runtime = choice("runtime", runtime, RUNTIMES)  # type: ignore[assignment]
    agent = choice("agent", agent, AGENTS)  # type: ignore[assignment]
    num = whole_number("num", num, 1)
    seed_start = whole_number("seed_start", seed_start, 0)
    # a limit is passed on only when the user set it: otherwise the runtime's config holds
    if max_turns is not None:
        max_turns = whole_number("max_turns", max_turns, 1)
    if max_tool_calls is not None:
        max_tool_calls = whole_number("max_tool_calls", max_tool_calls, 1)
    if step_timeout is not None:
        step_timeout = positive_seconds("step_timeout", step_timeout)
    strict_take = flag("strict_take", strict_take)
    cut_off = choice("cut_off", cut_off, CUT_OFF_MODES)  # type: ignore[assignment]
    prompt_set = _prompts_option(prompts)
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
    if solver is None:
        solver = (
            codeact(
                max_turns=max_turns, max_tool_calls=max_tool_calls, step_timeout=step_timeout,
                prompts=prompts, cut_off=cut_off,
            )
            if agent == CODEACT
            else react(max_turns=max_turns, max_tool_calls=max_tool_calls, prompts=prompts, cut_off=cut_off)
        )
    return Task(
        dataset=dataset,
        setup=knapsack_setup(strict_take=strict_take, require_runtime=agent == CODEACT),
        solver=solver,
        scorer=knapsack_scorer(),
        sandbox=SEMANTICS[runtime or PERSISTENT].sandbox if agent == CODEACT else None,
        metadata={
            key: value
            for key, value in (
                (RUNTIME_METADATA_KEY, runtime),
                (AGENT_METADATA_KEY, agent),
                (DIFFICULTY_METADATA_KEY, difficulty),
            )
            if value is not None
        },
    )


def _prompts_option(path: str | None) -> Prompts:
    try:
        return load_prompts(path)
    except PromptsError as error:
        raise TaskOptionError("prompts", path, f"is not a usable prompts file: {error.detail}") from None
