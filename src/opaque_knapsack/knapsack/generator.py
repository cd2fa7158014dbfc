"""Draw Opaque Knapsack instances, reproducibly.

Every random choice comes from one `random.Random(seed)` and only through its
`random()` method, whose sequence Python guarantees across versions and
platforms for integer seeds; integers are derived from it with plain float
arithmetic, and the inspect budget in IEEE doubles in the paper's order. So the same
config, index and seed give byte-identical JSON on every machine, process,
order and worker count.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

from opaque_knapsack.knapsack.optimum import SolveFn, solve_checked, solve_dp
from opaque_knapsack.knapsack.presets import PRESETS, GeneratorConfig
from opaque_knapsack.knapsack.schema import SCHEMA_VERSION, TaskInstance, dump_instance

__all__ = ["PRESETS", "GenerationError", "generate_instance", "instance_json", "task_id_for"]


class GenerationError(RuntimeError):
    """No draw met the rules within the config's attempt limit."""


def task_id_for(index: int) -> str:
    return f"knapsack-{index:010d}"


def _draw_int(rng: random.Random, low: int, high: int) -> int:
    """Uniform integer in [low, high] from `random()` alone (version-stable)."""
    return low + int(rng.random() * (high - low + 1))


@dataclass
class _Draw:
    classes: list[str]
    weights: list[int]
    values: list[int]
    allowed: list[str]


def _draw_items(rng: random.Random, config: GeneratorConfig) -> _Draw | None:
    """One draw, or None as soon as it has too few allowed items (before weights and values)."""
    names = config.class_names
    n_classes = len(names)
    pool = list(range(n_classes))
    picked: list[int] = []
    for _ in range(config.num_allowed_classes):  # partial Fisher-Yates
        picked.append(pool.pop(_draw_int(rng, 0, len(pool) - 1)))
    allowed = [names[i] for i in sorted(picked)]
    n_items = _draw_int(rng, *config.n_items)
    uniform = rng.random  # inlined _draw_int below: this loop is the generator's hot path
    classes = [allowed[int(uniform() * len(allowed))]]
    classes += [names[int(uniform() * n_classes)] for _ in range(n_items - 1)]
    allowed_set = set(allowed)
    if sum(1 for name in classes if name in allowed_set) < config.min_allowed_items:
        return None
    w_low, w_span = config.weight[0], config.weight[1] - config.weight[0] + 1
    v_low, v_span = config.value[0], config.value[1] - config.value[0] + 1
    weights = [w_low + int(uniform() * w_span) for _ in range(n_items)]
    values = [v_low + int(uniform() * v_span) for _ in range(n_items)]
    return _Draw(classes, weights, values, allowed)


ID_PREFIX = "item_"
ID_HEX_DIGITS = 12
"""Item ids in the paper's form, ``item_`` + 12 lowercase hex digits (17 characters):
models retype ids as literals, so their length moves tokens."""


def _draw_ids(rng: random.Random, count: int) -> list[str]:
    """Opaque ids: random hex, so they say nothing about an item; unique within the instance.

    ``random()`` is k / 2**53 for a 53-bit k, so scaling by 2**48 is exact in
    doubles and the 48-bit draw (k's top bits) is the same on every machine.
    """
    ids: list[str] = []
    seen: set[str] = set()
    scale = 1 << (4 * ID_HEX_DIGITS)
    while len(ids) < count:
        item_id = f"{ID_PREFIX}{int(rng.random() * scale):0{ID_HEX_DIGITS}x}"
        if item_id not in seen:
            seen.add(item_id)
            ids.append(item_id)
    return ids


def inspect_budget(capacity: int, optimal_size: int, n_items: int, config: GeneratorConfig) -> int:
    """The paper's budget: ceil(max(((capacity / mean weight) * 1.5) / max(p_valid, 0.01),
    optimal size * 1.1)), clamped to [5, n_items].

    IEEE double arithmetic in exactly the paper's order, because the budget is
    a measured condition of the study: ``50 * 1.1`` is 55.00000000000001 and
    gives 56 (``10 * 1.1`` is exactly 11.0), and an exact-integer version
    differs by one at some capacities.
    Doubles are the same on every machine, so the bytes stay reproducible.
    """
    mean_weight = (config.weight[0] + config.weight[1]) / 2
    p_valid = config.num_allowed_classes / len(config.class_names)
    needed = max(((capacity / mean_weight) * 1.5) / max(p_valid, 0.01), optimal_size * 1.1)
    return min(max(math.ceil(needed), 5), n_items)


def difficulty_figure(value: float) -> float:
    """A difficulty field as the paper's files hold it: rounded to 2 decimals."""
    return round(value, 2)


@dataclass
class _Accepted:
    draw: _Draw
    capacity: int
    chosen: list[int]  # item indices of the optimal set
    optimal_value: int
    optimal_weight: int
    dominance: float


def _judge(
    rng: random.Random, config: GeneratorConfig, cross_check: bool, solve: SolveFn
) -> _Accepted | str:
    """Draw once; return the accepted draw or the reason it was rejected."""
    draw = _draw_items(rng, config)
    if draw is None:
        return "too few allowed items"
    allowed = set(draw.allowed)
    usable = [i for i, name in enumerate(draw.classes) if name in allowed]
    weights = [draw.weights[i] for i in usable]
    values = [draw.values[i] for i in usable]
    ratio_low, ratio_high = config.capacity_ratio
    ratio = ratio_low + (ratio_high - ratio_low) * rng.random()
    capacity = max(round(ratio * sum(weights)), min(weights))
    solution = solve_checked(weights, values, capacity, cross_check=cross_check, solve=solve)
    chosen = [usable[i] for i in solution.indices]
    top_value = max((draw.values[i] for i in chosen), default=0)
    dominance = top_value / solution.value if solution.value else 0.0
    if config.strict:
        if len(chosen) < config.min_optimal_set_size:
            return "optimal set too small"
        if solution.value == 0 or dominance > config.max_item_dominance:
            return "one item dominates the optimum"
    return _Accepted(draw, capacity, chosen, solution.value, solution.weight, dominance)


def generate_instance(
    config: GeneratorConfig,
    index: int,
    seed: int,
    *,
    run_name: str | None = None,
    cross_check: bool = True,
    solve: SolveFn = solve_dp,
) -> TaskInstance:
    """Draw instance `index` from `seed`, rejecting draws that break the rules.

    `cross_check` (OR-tools confirms the optimum) and `solve` (the primary
    exact method) exist for benchmarks; generated files always use the defaults.
    """
    rng = random.Random(seed)
    rejections: Counter[str] = Counter()
    for _ in range(config.max_attempts):
        outcome = _judge(rng, config, cross_check, solve)
        if isinstance(outcome, str):
            rejections[outcome] += 1
            continue
        ids = _draw_ids(rng, len(outcome.draw.classes))
        return _build(config, index, seed, run_name, outcome, ids)
    summary = ", ".join(f"{reason}: {count}" for reason, count in sorted(rejections.items()))
    raise GenerationError(
        f"{task_id_for(index)} (seed {seed}): no draw met the rules in {config.max_attempts} "
        f"attempts ({summary}); loosen the config or raise max_attempts"
    )


def _build(
    config: GeneratorConfig,
    index: int,
    seed: int,
    run_name: str | None,
    accepted: _Accepted,
    ids: list[str],
) -> TaskInstance:
    draw, capacity, chosen = accepted.draw, accepted.capacity, accepted.chosen
    n_items = len(ids)
    budget = inspect_budget(capacity, len(chosen), n_items, config)
    data: dict[str, object] = {
        "task_id": task_id_for(index),
        "family": "knapsack",
        "seed": seed,
        "difficulty": {
            "n_items": n_items,
            "optimal_set_size": len(chosen),
            "capacity": capacity,
            "p_valid": difficulty_figure(config.num_allowed_classes / len(config.class_names)),
            "budget_coverage": difficulty_figure(budget / n_items),
            "max_item_dominance": difficulty_figure(accepted.dominance),
        },
        "public": {
            "item_ids": ids,
            "capacity": capacity,
            "allowed_classes": draw.allowed,
            "inspect_budget": budget,
            "classes": config.class_names,
        },
        "private": {
            "items": {
                item_id: {"weight": weight, "value": value, "class": name}
                for item_id, weight, value, name in zip(ids, draw.weights, draw.values, draw.classes, strict=True)
            }
        },
        "reference": {
            "optimal_item_ids": [ids[i] for i in chosen],
            "optimal_value": accepted.optimal_value,
            "optimal_weight": accepted.optimal_weight,
        },
        "schema_version": SCHEMA_VERSION,
    }
    if run_name is not None:
        data["run_name"] = run_name
    return TaskInstance.model_validate(data)


def instance_json(instance: TaskInstance) -> str:
    """Canonical JSON text of an instance (what the task file holds)."""
    return dump_instance(instance)
