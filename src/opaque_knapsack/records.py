"""The log contract: every name that ties a log to its writers and readers.

Where an episode's records live in the sample store and their shape, the task
and scorer names, the score keys, the runtime names, the end reasons and the
metadata keys. The agents and the scorer write with them, the scorer reads
them back (also from a finished log, with ``inspect score``), and the readers
of logs (reports, training export, ``opaque_knapsack.logs``) look them up. A
name is written out here once and imported everywhere else;
``tests/test_contract.py`` fails on a literal copy anywhere in the package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Literal, get_args

EPISODE_KEY = "knapsack:episode"
ENVIRONMENT_KEY = "knapsack:environment"
STEPS_KEY = "knapsack:steps"
END_REASON_KEY = "knapsack:end_reason"
AGENT_KEY = "knapsack:agent"
RUNTIME_KEY = "knapsack:runtime"
STRICT_TAKE_KEY = "knapsack:strict_take"
PREBOUND_KEY = "knapsack:prebound"
"""Global names the runtime binds before every step (its pre-bound modules)."""

TOOL_NAMES = ("list_items", "inspect", "take_item", "finish")

Runtime = Literal["persistent", "stateless"]
"""The Python runtime semantics a CodeAct episode runs in (and a student was
trained in): the study's one vocabulary for them. Choices come from
``RUNTIMES``; any alias elsewhere is this type, imported."""
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
PERSISTENT: Runtime = "persistent"
STATELESS: Runtime = "stateless"

Difficulty = Literal["easy", "medium", "hard"]
"""The difficulty labels of the task families' presets, in order: the knapsack
family's presets are the paper's three (``Preset``), the guess family uses two.
An eval records its label in its metadata and the reports order by it."""
DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)
CUSTOM_DIFFICULTY = "custom"
"""The label of task files no preset fits (a custom generator config)."""


@dataclass(frozen=True)
class RuntimeSemantics:
    """What a Python runtime keeps from one step to the next: the one value its users ask.

    Looked up once, where the sandbox is chosen (``SEMANTICS[name]``); the
    kernel, the prompts and the reports ask it ("does state persist?", "are
    files kept?") instead of comparing runtime names.
    """

    name: Runtime
    """The runtime's name, as logs record it (``RUNTIME_KEY``)."""
    persists_state: bool
    """Globals, imports and definitions live on from one step to the next."""
    keeps_files: bool
    """Files a step writes are still there at the next step."""

    @property
    def sandbox(self) -> str:
        """The name of the Inspect sandbox that runs this runtime (``--sandbox``)."""
        return f"{self.name}_python"

    def keeping_files(self) -> RuntimeSemantics:
        """The same runtime with its working directory kept between steps."""
        return replace(self, keeps_files=True)


SEMANTICS: dict[Runtime, RuntimeSemantics] = {
    PERSISTENT: RuntimeSemantics(PERSISTENT, persists_state=True, keeps_files=True),
    STATELESS: RuntimeSemantics(STATELESS, persists_state=False, keeps_files=False),
}
"""Each runtime's semantics, by name: the one place a name becomes a value."""


def semantics_of(name: object) -> RuntimeSemantics | None:
    """The semantics of a runtime name read from a log (None: not a runtime, e.g. ``unknown``)."""
    return SEMANTICS.get(name) if isinstance(name, str) else None  # type: ignore[call-overload]

ReActAgent = Literal["react"]
"""The ReAct baseline: native tool calls, no runtime (a student of its own)."""
Agent = Literal["codeact", ReActAgent]
"""The agent an episode ran (kept under ``AGENT_KEY``): CodeAct, in a runtime,
or the ReAct baseline."""
AGENTS: tuple[Agent, ...] = get_args(Agent)
CODEACT: Agent = "codeact"
REACT: Agent = "react"

TASK_NAME = "knapsack"
"""The task's name; Inspect registers it as ``opaque_knapsack/knapsack`` and the
training matrix names its cells ``knapsack-<student>-...``."""
TASK_REGISTRY_NAME = f"opaque_knapsack/{TASK_NAME}"

EndReason = Literal["finished", "turn_limit", "context_length", "error", "model_error"]
"""Why an episode ended, kept under ``END_REASON_KEY`` and in the score's metadata."""
FINISHED: EndReason = "finished"
"""The agent called finish(): the only end the agent chose."""
TURN_LIMIT: EndReason = "turn_limit"
CONTEXT_LENGTH: EndReason = "context_length"
"""The model's context overflowed (stop reason ``model_length``)."""
EPISODE_ERROR: EndReason = "error"
"""The turn loop raised; the sample errors."""
MODEL_ERROR: EndReason = "model_error"
"""Written by logs from before a model error errored the sample; read by the reports."""

END_REASON_METADATA_KEY = "end_reason"
"""The score metadata key that repeats the end reason (read by the reports)."""

TRAIN_METADATA_KEY = "train"
"""Eval metadata key naming the runtime a student model was trained in (see
``opaque_knapsack.logs.train_semantics``)."""
RUNTIME_METADATA_KEY = "runtime"
"""The runtime's name: a task argument and eval metadata key (the task's
choice) and a sample metadata key (the sandbox the sample really got, which
``--sandbox`` may have overridden). Read through ``runtime_of``."""
DIFFICULTY_METADATA_KEY = "difficulty"
"""The difficulty preset: eval metadata (the task's) and sample metadata (the task file's label)."""
AGENT_METADATA_KEY = "agent"
"""The agent: a task argument and eval metadata key (each sample's is under ``AGENT_KEY``)."""
BASE_TRAIN = "base"
"""The ``TRAIN_METADATA_KEY`` value of an untrained base model."""
SCRIPTED_PROVIDER = "scripted"
"""The offline policies' model provider: ``scripted/<runtime>`` plays a model
trained in that runtime."""

# The episode scorer's name and the keys of its dict value: the contract
# between the scorer and everything that reads logs (reports, export).
SCORER_NAME = "knapsack_scorer"


class ScoreKey(StrEnum):
    """The keys of the episode score's dict, in the order the scorer writes them.

    A member is its key (``ScoreKey.STEPS == "steps"``, and it formats and
    hashes as the string), so readers index dicts and frames with it; writers
    store ``.value``, a plain string, in the log.
    """

    OPTIMALITY = "optimality"
    SOLVED = "solved"
    CAPACITY_UTILIZATION = "capacity_utilization"
    ITEMS_INSPECTED = "items_inspected"
    STEPS = "steps"
    TOOL_CALLS = "tool_calls"
    TOOL_CALL_SITES = "tool_call_sites"
    AST_TOOL_CALL_SITES = "ast_tool_call_sites"
    INPUT_TOKENS = "input_tokens"
    CACHED_INPUT_TOKENS = "cached_input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    REASONING_TOKENS = "reasoning_tokens"
    TOTAL_TOKENS = "total_tokens"
    CUT_OFF_REPLIES = "cut_off_replies"
    """Replies that did not end normally (token limit, content filter) and were
    neither run nor kept, as the paper's loop treats them."""
    BILLED_TOKENS = "billed_tokens"
    """The provider's total over every reply, cut-off ones included: the cost."""
    NAME_ERROR_EPISODE = "name_error_episode"
    NAME_ERROR_COUNT = "name_error_count"
    STATE_UTILIZATION = "state_utilization"
    REIMPORT_RATE = "reimport_rate"
    SYMBOL_LIFESPAN = "symbol_lifespan"
    STEP_TIMEOUTS = "step_timeouts"
    KERNEL_RESTARTS = "kernel_restarts"


SCORE_KEYS: tuple[str, ...] = tuple(key.value for key in ScoreKey)

TOKEN_KEYS: tuple[str, ...] = tuple(
    key.value
    for key in (
        ScoreKey.INPUT_TOKENS,
        ScoreKey.CACHED_INPUT_TOKENS,
        ScoreKey.OUTPUT_TOKENS,
        ScoreKey.REASONING_TOKENS,
        ScoreKey.TOTAL_TOKENS,
    )
)
"""Token counts: a ``StepRecord`` field and a score key each (the episode's sum)."""

# Score keys that count runtime faults, not agent behaviour: any of them in a
# condition means load (or the code's own limits) may have moved its figures.
FAULT_KEYS: tuple[str, ...] = (ScoreKey.STEP_TIMEOUTS.value, ScoreKey.KERNEL_RESTARTS.value)


def fault_note(where: str, step_timeouts: float, kernel_restarts: float, episodes: int) -> str | None:
    """A one-line warning when a condition's episodes hit step timeouts or kernel restarts."""
    if not step_timeouts and not kernel_restarts:
        return None
    return (
        f"{where}: {int(step_timeouts)} step timeouts and {int(kernel_restarts)} kernel restarts in "
        f"{episodes} episodes; if the agent's code did not cause them, the machine was overloaded and the "
        "figures may measure the load (re-run with lower --max-samples, or see the step_timeouts and "
        "kernel_restarts scores)"
    )

def runtime_of(sample: Any = None, header: Any = None) -> str | None:
    """The runtime an episode ran in: the one order in which every reader of logs looks.

    ``sample`` is an ``EvalSample`` or its summary (or None), ``header`` an
    ``EvalLog`` or its ``EvalSpec`` (or None). First what the agent recorded
    in the sample's store (``RUNTIME_KEY``), then what the task's setup
    recorded in its metadata (the sandbox it really got), then the task's
    choice (eval metadata, then the task argument). None when nothing says,
    as for a ReAct episode.
    """
    store = getattr(sample, "store", None) or {}
    metadata = getattr(sample, "metadata", None) or {}
    spec = getattr(header, "eval", header)
    found = [store.get(RUNTIME_KEY), metadata.get(RUNTIME_METADATA_KEY)]
    if spec is not None:
        found += [(spec.metadata or {}).get(RUNTIME_METADATA_KEY), (spec.task_args or {}).get(RUNTIME_METADATA_KEY)]
    return next((str(value) for value in found if value), None)


# Every family's task names its family in the eval metadata under this key
# (``AgentOptions.metadata``); readers of logs take the episode's figures from
# its scorer's dict score (see CONTRIBUTING.md, "Add a task family").
FAMILY_METADATA_KEY = "family"

INSTANCE_METADATA_KEY = "instance"
"""Sample metadata key of the knapsack task's hidden instance (``knapsack/schema.py`` writes and reads it)."""


@dataclass
class StepRecord:
    """What the scorer needs of one assistant turn (the log's events hold the rest)."""

    turn: int
    code: str | None  # None: no block ran this turn
    tool_calls: int = 0
    error_type: str | None = None
    is_name_error: bool = False
    undefined_name: str | None = None
    """The name the step's NameError could not find, as the runtime reported it."""
    bound_at_start: list[str] | None = None
    """Names the block mentions that the interpreter held when the step started
    (the runtime's report, cut to the names in the code to keep the store small);
    None when unknown, e.g. a log written before the runtime reported it."""
    input_tokens: int = 0
    """Prompt tokens, cache reads and writes included."""
    cached_input_tokens: int = 0
    """Prompt tokens read from the provider's cache."""
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    """The provider's total as Inspect reports it (``ModelUsage.total_tokens``)."""
    timed_out: bool = False
    kernel_restarted: bool = False
    stop_reason: str | None = None
    """Inspect's ``StopReason`` of the turn's reply; None in logs written before it was kept."""
    cut_off: bool = False
    """The reply was neither run nor kept in the history because of its stop
    reason; its token figures above stay 0, as the paper does not count it."""
    billed_tokens: int = 0
    """The provider's total for the reply, whether it was kept or not."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
