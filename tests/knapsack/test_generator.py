"""Generator rules, reproducibility, and the exact optimum."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import subprocess
import sys
from fractions import Fraction

import pytest

from opaque_knapsack.knapsack import (
    PRESETS,
    GenerationError,
    TaskInstance,
    generate_instance,
    instance_json,
    solve_instance,
)
from opaque_knapsack.knapsack.optimum import (
    Solution,
    SolverMismatchError,
    solve_checked,
    solve_dp,
    solve_ortools,
)
from opaque_knapsack.knapsack.presets import GeneratorConfig

# Pinned digests: a change here means every published task set changes.
GOLDEN = {
    "easy": "98e37910366271fded4f1934b78272956ee9ef8f91df765550d9e064b619a033",
    "medium": "7124513b95c1f767f4bfdcedbdbf58f5da1743205885cda6f3659e4fe8c164b5",
    "hard": "eb8d765f8a41a8b21c0fb09b82d1a4d0375c98a5734b26c563a3b430a61bfbff",
}
# Digest of the concatenated files for indices/seeds 0..49.
GOLDEN_BATCH = {
    "easy": "3381d6896c1db213fe8246ea2dd3a2d5e3b0deb3fce44370f152b4b7def56a64",
    "medium": "6bfc03f7c3ff08b528b87f624b4fdf73ed17635f2ef911907ff95d58f8d14abc",
    "hard": "beea86409c23d7956b305ae18064f1681920151abdeb02de5eb844420ad54315",
}
ID_PATTERN = re.compile(r"^item_[0-9a-f]{12}$")  # the paper's form, 17 characters


def digest(instance: TaskInstance) -> str:
    return hashlib.sha256(instance_json(instance).encode()).hexdigest()


def expected_budget(capacity: int, optimal_size: int, n_items: int, config: GeneratorConfig) -> int:
    """The paper's formula, written out independently, in doubles and its order."""
    mean_weight = (config.weight[0] + config.weight[1]) / 2.0
    p_valid = config.num_allowed_classes / len(config.class_names)
    raw = max(((capacity / mean_weight) * 1.5) / max(p_valid, 0.01), optimal_size * 1.1)
    return min(max(math.ceil(raw), 5), n_items)


def assert_rules(instance: TaskInstance, config: GeneratorConfig) -> None:
    public, items, ref, difficulty = (
        instance.public,
        instance.private.items,
        instance.reference,
        instance.difficulty,
    )
    ids = public.item_ids
    n = len(ids)
    assert config.n_items[0] <= n <= config.n_items[1]
    assert all(ID_PATTERN.match(i) for i in ids) and len(set(ids)) == n
    assert public.classes == config.class_names
    allowed = set(public.allowed_classes)
    assert len(allowed) == config.num_allowed_classes and allowed <= set(config.class_names)
    for item in items.values():
        assert config.weight[0] <= item.weight <= config.weight[1]
        assert config.value[0] <= item.value <= config.value[1]
        assert item.class_ in config.class_names
    assert items[ids[0]].class_ in allowed  # item 0 is of an allowed class
    allowed_items = [items[i] for i in ids if items[i].class_ in allowed]
    assert len(allowed_items) >= 5
    total_allowed = sum(item.weight for item in allowed_items)
    lightest = min(item.weight for item in allowed_items)
    low, high = config.capacity_ratio
    assert public.capacity == lightest or (
        low * total_allowed - 0.5 <= public.capacity <= high * total_allowed + 0.5
    )
    assert public.capacity >= lightest
    chosen = [items[i] for i in ref.optimal_item_ids]
    assert len(chosen) >= 3
    assert max(item.value for item in chosen) <= 0.4 * ref.optimal_value
    assert ref.optimal_weight <= public.capacity
    assert public.inspect_budget == expected_budget(public.capacity, len(chosen), n, config)
    assert difficulty.n_items == n
    assert difficulty.optimal_set_size == len(chosen)
    assert difficulty.capacity == public.capacity
    assert difficulty.p_valid == round(config.num_allowed_classes / len(config.class_names), 2)
    assert difficulty.budget_coverage == round(public.inspect_budget / n, 2)
    assert difficulty.max_item_dominance == round(max(item.value for item in chosen) / ref.optimal_value, 2)


@pytest.mark.parametrize(("preset", "count"), [("easy", 3000), ("medium", 1500), ("hard", 2500)])
def test_every_rule_holds(preset: str, count: int) -> None:
    config = PRESETS[preset]
    for index in range(count):
        instance = generate_instance(config, index, 1000 + index)
        assert instance.task_id == f"knapsack-{index:010d}"
        assert instance.seed == 1000 + index
        assert_rules(instance, config)


@pytest.mark.parametrize("preset", ["easy", "medium", "hard"])
def test_reference_matches_an_independent_solve(preset: str) -> None:
    config = PRESETS[preset]
    for index in range(200):
        instance = generate_instance(config, index, index)
        allowed = set(instance.public.allowed_classes)
        items = [i for i in instance.private.items.values() if i.class_ in allowed]
        other = solve_ortools([i.weight for i in items], [i.value for i in items], instance.public.capacity)
        assert other.value == instance.reference.optimal_value


def test_paper_statistics_are_reproduced() -> None:
    """DESIGN.md: easy ~34 items, ~82% coverage, ~4 optimal items; medium ~102, ~78%, ~12."""
    for preset, items, coverage, size in (("easy", 34, 0.82, 4), ("medium", 102, 0.78, 12)):
        instances = [generate_instance(PRESETS[preset], i, 123456789 + i) for i in range(100)]
        mean = lambda values: sum(values) / len(values)  # noqa: E731
        assert abs(mean([x.difficulty.n_items for x in instances]) - items) < 5
        assert abs(mean([x.difficulty.budget_coverage for x in instances]) - coverage) < 0.05
        assert abs(mean([x.difficulty.optimal_set_size for x in instances]) - size) < 1.5


def test_budget_is_the_papers_double_arithmetic() -> None:
    """The product rounds up in doubles: 50 * 1.1 is 55.00000000000001, so 50 optimal items ask for 56.

    (10 * 1.1 is exactly 11.0 in IEEE doubles, so 10 asks for 11.)
    """
    from opaque_knapsack.knapsack.generator import inspect_budget

    medium = PRESETS["medium"]
    # a capacity small enough that the optimal-set term decides
    assert inspect_budget(1, 50, 120, medium) == 56
    assert inspect_budget(1, 10, 120, medium) == 11
    # the capacity term, in the paper's order: ((c / 27.5) * 1.5) / (5 / 26)
    for capacity in range(1, 400):
        assert inspect_budget(capacity, 3, 120, medium) == min(
            max(math.ceil(((capacity / 27.5) * 1.5) / (5 / 26)), math.ceil(3 * 1.1), 5), 120
        )
    # the exact-integer formula gives one less at these easy capacities
    easy = PRESETS["easy"]
    differs = [
        capacity
        for capacity in range(1, 200)
        if inspect_budget(capacity, 3, 40, easy)
        != min(max(math.ceil(Fraction(3 * capacity * 15, 25 * 3)), 5), 40)
    ]
    assert differs == [10, 20, 40]
    assert inspect_budget(10, 3, 40, easy) == 7


def test_difficulty_fields_have_two_decimals() -> None:
    for index in range(30):
        difficulty = json.loads(instance_json(generate_instance(PRESETS["medium"], index, index)))["difficulty"]
        for field in ("p_valid", "budget_coverage", "max_item_dominance"):
            assert difficulty[field] == round(difficulty[field], 2)
            assert len(repr(difficulty[field]).split(".")[-1]) <= 2


@pytest.mark.parametrize("preset", ["easy", "medium", "hard"])
def test_golden_bytes(preset: str) -> None:
    assert digest(generate_instance(PRESETS[preset], 0, 123456789)) == GOLDEN[preset]
    batch = hashlib.sha256()
    for index in range(50):
        batch.update(instance_json(generate_instance(PRESETS[preset], index, index)).encode())
    assert batch.hexdigest() == GOLDEN_BATCH[preset]


def test_item_ids_are_the_papers_form_and_unique_even_when_draws_repeat() -> None:
    from opaque_knapsack.knapsack.generator import _draw_ids

    ids = generate_instance(PRESETS["medium"], 0, 123456789).public.item_ids
    assert all(ID_PATTERN.match(i) and len(i) == 17 for i in ids)

    class Repeating:
        """Draws 0.5 three times, then 0.25: a collision the generator must redraw past."""

        def __init__(self) -> None:
            self.values = [0.5, 0.5, 0.5, 0.25]

        def random(self) -> float:
            return self.values.pop(0)

    assert _draw_ids(Repeating(), 2) == ["item_800000000000", "item_400000000000"]  # type: ignore[arg-type]


def test_same_seed_same_bytes_and_index_only_names_the_task() -> None:
    config = PRESETS["easy"]
    first = instance_json(generate_instance(config, 7, 42))
    assert first == instance_json(generate_instance(config, 7, 42))
    assert first.endswith("}\n") and "\n" not in first[:-1]
    other = json.loads(instance_json(generate_instance(config, 8, 42)))
    assert other.pop("task_id") == "knapsack-0000000008"
    mine = json.loads(first)
    mine.pop("task_id")
    assert mine == other
    assert instance_json(generate_instance(config, 7, 43)) != first


def test_bytes_identical_in_another_process() -> None:
    code = (
        "import hashlib\n"
        "from opaque_knapsack.knapsack import PRESETS, generate_instance, instance_json\n"
        "for preset in ('easy', 'medium', 'hard'):\n"
        "    for seed in range(20):\n"
        "        data = instance_json(generate_instance(PRESETS[preset], seed, 500 + seed)).encode()\n"
        "        print(hashlib.sha256(data).hexdigest())\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    here = [
        digest(generate_instance(PRESETS[preset], seed, 500 + seed))
        for preset in ("easy", "medium", "hard")
        for seed in range(20)
    ]
    assert result.stdout.split() == here


def test_no_wall_clock_or_host_detail_in_files() -> None:
    text = instance_json(generate_instance(PRESETS["easy"], 0, 0))
    assert "generated_at" not in text and os.uname().nodename not in text


def brute_force(instance: TaskInstance) -> int:
    """Best value over every subset of all items (forbidden classes make a subset infeasible)."""
    items = list(instance.private.items.values())
    allowed = set(instance.public.allowed_classes)
    best = 0
    for size in range(len(items) + 1):
        for subset in itertools.combinations(items, size):
            if all(i.class_ in allowed for i in subset) and sum(i.weight for i in subset) <= instance.public.capacity:
                best = max(best, sum(i.value for i in subset))
    return best


def test_optimum_equals_brute_force_on_small_instances(tiny_config: GeneratorConfig) -> None:
    for index in range(150):
        instance = generate_instance(tiny_config, index, index)
        assert instance.reference.optimal_value == brute_force(instance)
        assert solve_instance(instance).value == instance.reference.optimal_value


def test_dp_with_ties_is_exact_and_deterministic() -> None:
    import random

    rng = random.Random(5)
    for _ in range(300):
        n = rng.randint(0, 10)
        weights = [rng.randint(1, 4) for _ in range(n)]
        values = [rng.randint(0, 3) for _ in range(n)]  # many ties
        capacity = rng.randint(1, 15)
        solution = solve_dp(weights, values, capacity)
        best = max(
            sum(values[i] for i in subset)
            for size in range(n + 1)
            for subset in itertools.combinations(range(n), size)
            if sum(weights[i] for i in subset) <= capacity
        )
        assert solution.value == best == sum(values[i] for i in solution.indices)
        assert solution.weight == sum(weights[i] for i in solution.indices) <= capacity
        assert solve_dp(weights, values, capacity) == solution
        assert solve_checked(weights, values, capacity).value == best


def test_cross_check_mismatch_raises() -> None:
    def wrong(weights, values, capacity):  # type: ignore[no-untyped-def]
        return Solution((), 0, 0)

    with pytest.raises(SolverMismatchError, match="OR-tools"):
        solve_checked([3, 4], [5, 6], 10, solve=wrong)


def test_unsatisfiable_rules_give_a_clear_error() -> None:
    config = GeneratorConfig(
        n_items=(10, 10),
        weight=(10, 10),
        value=(5, 5),
        classes=["A"],
        num_allowed_classes=1,
        capacity_ratio=(0.01, 0.01),  # capacity = one item: optimal set of 1
        max_attempts=25,
    )
    with pytest.raises(GenerationError, match=r"knapsack-0000000004 \(seed 9\).*25 attempts.*optimal set too small"):
        generate_instance(config, 4, 9)
