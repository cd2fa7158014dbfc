"""The four tools' semantics: budget, re-inspection, refusals with state unchanged."""

from __future__ import annotations

import json

import pytest

from opaque_knapsack.family import KnapsackEnvironment, KnapsackToolError, TaskInstance


def allowed_ids(instance: TaskInstance) -> list[str]:
    allowed = set(instance.public.allowed_classes)
    return [i for i in instance.public.item_ids if instance.private.items[i].class_ in allowed]


def forbidden_id(instance: TaskInstance) -> str:
    allowed = set(instance.public.allowed_classes)
    return next(i for i in instance.public.item_ids if instance.private.items[i].class_ not in allowed)


def refused(env: KnapsackEnvironment, call, *args: str, match: str) -> None:  # type: ignore[no-untyped-def]
    before = env.to_state(), env.budget_left, env.total_value, env.total_weight
    with pytest.raises(KnapsackToolError, match=match):
        call(*args)
    assert (env.to_state(), env.budget_left, env.total_value, env.total_weight) == before


def test_list_items_is_sorted(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance)
    listed = json.loads(env.list_items())
    assert listed == sorted(easy_instance.public.item_ids)
    assert set(listed) == set(easy_instance.private.items)


def test_first_listed_id_does_not_leak_an_allowed_class() -> None:
    """Generation order puts an allowed item first; the paper's sorted listing does not."""
    from opaque_knapsack.family import PRESETS, generate_instance

    first_allowed = 0
    count = 200
    for index in range(count):
        instance = generate_instance(PRESETS["easy"], index, 123456789 + index)
        first = json.loads(KnapsackEnvironment(instance).list_items())[0]
        first_allowed += instance.private.items[first].class_ in instance.public.allowed_classes
    assert first_allowed / count < 0.5  # about 3 in 15 classes are allowed, plus item 0


def test_inspect_reveals_and_reinspect_is_free(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance)
    first_id, second_id = easy_instance.public.item_ids[:2]
    text = env.inspect(first_id)
    item = easy_instance.private.items[first_id]
    assert list(json.loads(text).items()) == [("class", item.class_), ("value", item.value), ("weight", item.weight)]
    assert env.budget_left == easy_instance.public.inspect_budget - 1
    assert env.inspect(first_id) == text
    assert env.budget_left == easy_instance.public.inspect_budget - 1
    env.inspect(second_id)
    assert env.inspected == [first_id, second_id]


def test_budget_exhaustion(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance)
    budget = easy_instance.public.inspect_budget
    ids = easy_instance.public.item_ids
    for item_id in ids[:budget]:
        env.inspect(item_id)
    assert env.budget_left == 0
    refused(env, env.inspect, ids[budget], match=rf"Inspect budget exhausted \({budget}/{budget} used\); item '{ids[budget]}' was not inspected")
    assert env.inspect(ids[0]) == env.inspect(ids[0])  # seen items stay free


def test_unknown_ids(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance)
    refused(env, env.inspect, "item_nope", match="Unknown item id 'item_nope'. Call list_items()")
    refused(env, env.take_item, "item_nope", match="Unknown item id")
    refused(env, env.inspect, 3, match="Item ids are strings")  # type: ignore[arg-type]


def test_take_rules_strict(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance)
    good = allowed_ids(easy_instance)[0]
    refused(env, env.take_item, good, match="has not been inspected; inspect it before taking it")
    env.inspect(good)
    result = json.loads(env.take_item(good))
    weight = easy_instance.private.items[good].weight
    assert result == {"taken": good, "remaining_capacity": easy_instance.public.capacity - weight}
    assert env.taken == [good] and env.total_weight == weight
    assert env.total_value == easy_instance.private.items[good].value
    refused(env, env.take_item, good, match="already in the knapsack")
    bad = forbidden_id(easy_instance)
    env.inspect(bad)
    refused(env, env.take_item, bad, match="its class is not allowed")


def test_take_before_inspect_lax(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance, strict_take=False)
    good = allowed_ids(easy_instance)[0]
    env.take_item(good)
    assert env.taken == [good] and env.inspected == []
    refused(env, env.take_item, forbidden_id(easy_instance), match="not allowed")


def test_capacity(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance, strict_take=False)
    items = easy_instance.private.items
    capacity = easy_instance.public.capacity
    ids = sorted(allowed_ids(easy_instance), key=lambda i: -items[i].weight)
    taken_weight = 0
    for item_id in ids:
        if taken_weight + items[item_id].weight <= capacity:
            env.take_item(item_id)
            taken_weight += items[item_id].weight
        else:
            room = capacity - taken_weight
            refused(env, env.take_item, item_id, match=rf"does not fit: {taken_weight}/{capacity} capacity used, {room} remaining")
            break
    else:
        pytest.fail("everything fitted; the instance should be tighter")
    assert env.total_weight == taken_weight


def test_finish_and_state_round_trip(easy_instance: TaskInstance) -> None:
    env = KnapsackEnvironment(easy_instance)
    good = allowed_ids(easy_instance)[:2]
    for item_id in good:
        env.inspect(item_id)
    env.take_item(good[0])
    text = env.finish()
    assert json.loads(text)["finished"] is True and env.finished
    assert env.finish() == text
    state = json.loads(json.dumps(env.to_state()))
    again = KnapsackEnvironment.from_state(easy_instance, state)
    assert again.to_state() == env.to_state()
    assert (again.budget_left, again.total_weight, again.total_value, again.finished) == (
        env.budget_left, env.total_weight, env.total_value, True)
    again.take_item(good[1])  # tools still work within the finishing step
    with pytest.raises(ValueError, match="unknown item id"):
        KnapsackEnvironment.from_state(easy_instance, {"inspected": ["item_nope"], "taken": []})
