"""The task file: one Opaque Knapsack instance as JSON.

The layout is the paper artifacts' (DESIGN.md, "The task family"), so files
produced elsewhere load unchanged: every model keeps unknown fields and writes
them back. Beyond types, an instance is checked for internal consistency (ids,
budget, reference solution); any problem raises `TaskFileError` naming the
file and the field. Whether the reference is *optimal* needs a re-solve and is
checked by `opaque_knapsack.knapsack.optimum.verify_optimum`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from opaque_knapsack.records import INSTANCE_METADATA_KEY

SCHEMA_VERSION = 1


class TaskFileError(ValueError):
    """A task file (or instance) that is malformed; says which file and field."""

    def __init__(self, path: str | Path | None, field: str, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.field = field
        self.problem = message
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{field}: {message}")

    def with_path(self, path: str | Path) -> TaskFileError:
        return TaskFileError(path, self.field, self.problem)


class _Open(BaseModel):
    """Keeps fields this package does not know, so foreign files round-trip."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Item(_Open):
    weight: StrictInt
    value: StrictInt
    class_: str = Field(alias="class")


class Difficulty(_Open):
    n_items: StrictInt
    optimal_set_size: StrictInt
    capacity: StrictInt
    p_valid: float
    budget_coverage: float
    max_item_dominance: float


class PublicView(_Open):
    """What the agent may learn, except `allowed_classes`, which stays secret."""

    item_ids: list[str]
    capacity: StrictInt
    allowed_classes: list[str]
    inspect_budget: StrictInt
    classes: list[str] | None = None


class PrivateView(_Open):
    items: dict[str, Item]


class Reference(_Open):
    optimal_item_ids: list[str]
    optimal_value: StrictInt
    optimal_weight: StrictInt


class TaskInstance(_Open):
    task_id: str
    family: Literal["knapsack"]
    seed: StrictInt
    difficulty: Difficulty
    public: PublicView
    private: PrivateView
    reference: Reference
    schema_version: StrictInt | str | None = None
    run_name: str | None = None
    generated_at: str | None = None
    nl: Any = None
    tools: Any = None

    @model_validator(mode="after")
    def _check_consistent(self) -> TaskInstance:
        check_instance(self)
        return self

    def class_names(self) -> list[str]:
        """All classes an item may have: what the agent is told (never which are allowed)."""
        if self.public.classes is not None:
            return list(self.public.classes)
        seen = {item.class_ for item in self.private.items.values()}
        seen.update(self.public.allowed_classes)
        return sorted(seen)

    @property
    def n_items(self) -> int:
        return len(self.public.item_ids)

    def to_json_dict(self) -> dict[str, Any]:
        """The file's JSON object: fields given on input (and extras) only."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _fail(field: str, message: str) -> None:
    raise TaskFileError(None, field, message)


def check_instance(instance: TaskInstance) -> None:
    """Raise `TaskFileError` (no path) for the first inconsistency found."""
    public, items, ref = instance.public, instance.private.items, instance.reference
    ids = public.item_ids
    id_set = set(ids)
    if len(id_set) != len(ids):
        duplicate = next(i for n, i in enumerate(ids) if i in ids[:n])
        _fail("public.item_ids", f"item id {duplicate!r} appears more than once")
    if not ids:
        _fail("public.item_ids", "the instance has no items")
    if id_set != items.keys():
        missing = sorted(id_set - items.keys())[:3]
        extra = sorted(items.keys() - id_set)[:3]
        detail = "; ".join(
            part
            for part in (
                f"listed but without data: {missing}" if missing else "",
                f"data for unlisted ids: {extra}" if extra else "",
            )
            if part
        )
        _fail("private.items", f"ids do not match public.item_ids ({detail})")
    for item_id, item in items.items():
        if item.weight <= 0:
            _fail(f"private.items.{item_id}.weight", f"{item.weight} must be a positive integer")
        if item.value < 0:
            _fail(f"private.items.{item_id}.value", f"{item.value} must not be negative")
    if public.capacity <= 0:
        _fail("public.capacity", f"{public.capacity} must be a positive integer")
    if public.inspect_budget < 1:
        _fail("public.inspect_budget", f"{public.inspect_budget} must be at least 1")
    if public.inspect_budget > len(ids):
        _fail(
            "public.inspect_budget",
            f"{public.inspect_budget} is larger than the number of items ({len(ids)})",
        )
    allowed = public.allowed_classes
    if not allowed:
        _fail("public.allowed_classes", "no class is allowed")
    if len(set(allowed)) != len(allowed):
        _fail("public.allowed_classes", f"{allowed} lists a class more than once")
    if public.classes is not None:
        known = set(public.classes)
        unknown = sorted(set(allowed) - known)
        if unknown:
            _fail("public.classes", f"allowed classes {unknown} are not among the classes")
        for item_id, item in items.items():
            if item.class_ not in known:
                _fail(f"private.items.{item_id}.class", f"{item.class_!r} is not among public.classes")
    _check_reference(ref, items, set(allowed), public.capacity)
    difficulty = instance.difficulty
    for field, expected in (
        ("n_items", len(ids)),
        ("optimal_set_size", len(ref.optimal_item_ids)),
        ("capacity", public.capacity),
    ):
        declared = getattr(difficulty, field)
        if declared != expected:
            _fail(f"difficulty.{field}", f"{declared} does not match the instance ({expected})")


def _check_reference(ref: Reference, items: dict[str, Item], allowed: set[str], capacity: int) -> None:
    chosen = ref.optimal_item_ids
    if len(set(chosen)) != len(chosen):
        _fail("reference.optimal_item_ids", "an item appears more than once")
    weight = value = 0
    for item_id in chosen:
        item = items.get(item_id)
        if item is None:
            _fail("reference.optimal_item_ids", f"unknown item id {item_id!r}")
            return
        if item.class_ not in allowed:
            _fail(
                "reference.optimal_item_ids",
                f"item {item_id!r} has class {item.class_!r}, which is not allowed",
            )
        weight += item.weight
        value += item.value
    if weight != ref.optimal_weight:
        _fail("reference.optimal_weight", f"{ref.optimal_weight} but the listed items weigh {weight}")
    if value != ref.optimal_value:
        _fail("reference.optimal_value", f"{ref.optimal_value} but the listed items are worth {value}")
    if weight > capacity:
        _fail("reference.optimal_weight", f"{weight} exceeds the capacity ({capacity})")


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    field = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "missing":
        return field, "required field is missing"
    return field, f"{error['msg']} (got {error.get('input')!r})"


def parse_instance(data: str | bytes | dict[str, Any], path: str | Path | None = None) -> TaskInstance:
    """Parse and check one instance; every failure is a `TaskFileError`."""
    if not isinstance(data, dict):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TaskFileError(path, "(file)", f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise TaskFileError(path, "(top level)", "a task file must hold one JSON object")
    try:
        return TaskInstance.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, TaskFileError):
            raise TaskFileError(path, cause.field, cause.problem) from None
        field, message = _describe(first)
        raise TaskFileError(path, field, message) from None


def read_instance(path: str | Path) -> TaskInstance:
    """Load one task file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise TaskFileError(path, "(file)", f"cannot read: {error.strerror or error}") from None
    return parse_instance(raw, path)


def dump_instance(instance: TaskInstance) -> str:
    """Canonical text of an instance: compact JSON in field order, newline-terminated.

    Generated instances always list their fields in the same order, so the same
    preset, index and seed give the same bytes everywhere.
    """
    return json.dumps(instance.to_json_dict(), separators=(",", ":")) + "\n"


# The hidden instance rides in sample metadata as a JSON *string*: Inspect
# deep-copies sample metadata with every score it aggregates, and a string
# copies for free where a nested dict of a hundred items does not.


def instance_metadata(instance: TaskInstance) -> str:
    """The sample metadata value (under ``INSTANCE_METADATA_KEY``) that carries the hidden instance."""
    return dump_instance(instance)


def instance_from_metadata(metadata: dict[str, Any]) -> TaskInstance:
    """The hidden instance of a sample made by the opaque_knapsack/knapsack task."""
    try:
        data = metadata[INSTANCE_METADATA_KEY]
    except KeyError:
        raise RuntimeError(
            "Sample metadata has no 'instance': this sample was not made by the "
            "opaque_knapsack/knapsack task."
        ) from None
    return parse_instance(data)
