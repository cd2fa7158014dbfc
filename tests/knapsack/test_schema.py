"""Task files: round trips (including foreign files) and clear errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from opaque_knapsack.knapsack import (
    TaskFileError,
    TaskInstance,
    dump_instance,
    instance_json,
    load_tasks,
    parse_instance,
    read_instance,
    verify_optimum,
)

from .helpers import write_json


def foreign_file(easy_data: dict[str, Any]) -> dict[str, Any]:
    """The same instance as another tool might write it: other key order, extras, no classes."""
    data = copy.deepcopy(easy_data)
    data["public"].pop("classes")
    data.pop("schema_version")
    data["generated_at"] = "2025-01-02T03:04:05Z"
    data["nl"] = "You are given a knapsack..."
    data["tools"] = [{"name": "inspect", "args": ["item_id"]}]
    data["meta"] = {"source": "paper", "split": [1, 2]}
    data["public"]["hint"] = None
    data["difficulty"]["label"] = "easy"
    data["reference"]["solver"] = "dp"
    first = next(iter(data["private"]["items"]))
    data["private"]["items"][first]["color"] = "red"
    data["private"]["checksum"] = "abc"
    return dict(reversed(list(data.items())))  # a different key order


def test_generated_instance_round_trips(easy_instance: TaskInstance) -> None:
    text = instance_json(easy_instance)
    again = parse_instance(text)
    assert again == easy_instance
    assert dump_instance(again) == text


def test_foreign_file_loads_and_writes_back_unchanged(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    data = foreign_file(easy_data)
    path = write_json(tmp_path / "foreign.json", data)
    instance = read_instance(path)
    assert json.loads(dump_instance(instance)) == data
    assert instance.generated_at == "2025-01-02T03:04:05Z"
    assert instance.public.classes is None
    # without public.classes, the agent is told the classes seen in the file
    expected = sorted({item["class"] for item in data["private"]["items"].values()} | set(data["public"]["allowed_classes"]))
    assert instance.class_names() == expected


def test_class_names_prefers_the_written_list(easy_instance: TaskInstance) -> None:
    assert easy_instance.class_names() == [chr(ord("A") + i) for i in range(15)]


def bad(tmp_path: Path, data: dict[str, Any]) -> TaskFileError:
    path = write_json(tmp_path / "tasks" / "knapsack" / "knapsack-0000000003.json", data)
    with pytest.raises(TaskFileError) as caught:
        read_instance(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.path == str(path)
    return caught.value


def test_missing_field(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    del easy_data["public"]["inspect_budget"]
    error = bad(tmp_path, easy_data)
    assert error.field == "public.inspect_budget"
    assert "missing" in str(error)


def test_budget_larger_than_items(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    n = len(easy_data["public"]["item_ids"])
    easy_data["public"]["inspect_budget"] = n + 11
    error = bad(tmp_path, easy_data)
    assert str(error).endswith(
        f"knapsack-0000000003.json: public.inspect_budget: {n + 11} is larger than the number of items ({n})"
    )


def test_ids_mismatch(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    items = easy_data["private"]["items"]
    victim = easy_data["public"]["item_ids"][5]
    items["item_zzzzzzzzzzzz"] = items.pop(victim)
    error = bad(tmp_path, easy_data)
    assert error.field == "private.items"
    assert victim in str(error) and "item_zzzzzzzzzzzz" in str(error)


def test_negative_weight(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    victim = easy_data["public"]["item_ids"][2]
    easy_data["private"]["items"][victim]["weight"] = -4
    error = bad(tmp_path, easy_data)
    assert error.field == f"private.items.{victim}.weight"
    assert "-4" in str(error)


def test_wrong_type(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    easy_data["public"]["capacity"] = "fifty"
    assert bad(tmp_path, easy_data).field == "public.capacity"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["reference"].__setitem__("optimal_value", d["reference"]["optimal_value"] + 1), "reference.optimal_value"),
        (lambda d: d["reference"].__setitem__("optimal_weight", 1), "reference.optimal_weight"),
        (lambda d: d["reference"]["optimal_item_ids"].append("item_nope"), "reference.optimal_item_ids"),
        (lambda d: d["difficulty"].__setitem__("n_items", 3), "difficulty.n_items"),
        (lambda d: d["public"].__setitem__("capacity", 0), "public.capacity"),
        (lambda d: d["public"].__setitem__("inspect_budget", 0), "public.inspect_budget"),
        (lambda d: d.__setitem__("family", "sokoban"), "family"),
        (lambda d: d["public"]["item_ids"].append(d["public"]["item_ids"][0]), "public.item_ids"),
    ],
)
def test_inconsistent_files(tmp_path: Path, easy_data: dict[str, Any], mutate: Any, field: str) -> None:
    mutate(easy_data)
    assert bad(tmp_path, easy_data).field == field


def test_reference_of_forbidden_class(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    allowed = set(easy_data["public"]["allowed_classes"])
    items = easy_data["private"]["items"]
    forbidden = next(i for i, item in items.items() if item["class"] not in allowed)
    ref = easy_data["reference"]
    ref["optimal_item_ids"] = [forbidden]
    ref["optimal_value"] = items[forbidden]["value"]
    ref["optimal_weight"] = items[forbidden]["weight"]
    easy_data["difficulty"]["optimal_set_size"] = 1
    error = bad(tmp_path, easy_data)
    assert error.field == "reference.optimal_item_ids" and "not allowed" in str(error)


def suboptimal(data: dict[str, Any]) -> dict[str, Any]:
    """Drop one item from the optimal set: consistent, feasible, not optimal."""
    ref = data["reference"]
    dropped = ref["optimal_item_ids"].pop()
    item = data["private"]["items"][dropped]
    ref["optimal_value"] -= item["value"]
    ref["optimal_weight"] -= item["weight"]
    data["difficulty"]["optimal_set_size"] -= 1
    return data


def test_optimum_not_optimal(tmp_path: Path, easy_data: dict[str, Any]) -> None:
    path = write_json(tmp_path / "knapsack-0000000003.json", suboptimal(easy_data))
    instance = read_instance(path)  # the schema alone cannot tell
    with pytest.raises(TaskFileError, match=r"reference\.optimal_value: \d+ is not the optimum"):
        verify_optimum(instance, str(path))
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path, verify_optimum=True)
    assert caught.value.path == str(path) and caught.value.field == "reference.optimal_value"
    assert len(load_tasks(path)) == 1


def test_not_json_and_not_an_object(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"task_id": "knap', encoding="utf-8")
    with pytest.raises(TaskFileError, match=r"broken\.json: \(file\): not valid JSON"):
        read_instance(broken)
    listed = write_json(tmp_path / "list.json", [1, 2])
    with pytest.raises(TaskFileError, match=r"list\.json: \(top level\)"):
        read_instance(listed)
