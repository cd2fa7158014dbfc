"""The hidden state of one episode and the four tools' exact semantics.

This object lives in the harness process, never in the agent's interpreter:
the runtime's tool stubs forward each call here. Every refused call raises
`KnapsackToolError` with a sentence the agent can act on, and leaves the state
exactly as it was. Pure Python, no I/O.

After `finish()` the tools keep working: the episode ends after the current
step, so calls later in the same code block still count. `finish()` itself is
idempotent.
"""

from __future__ import annotations

import json
from typing import Any

from opaque_knapsack.knapsack.schema import TaskInstance

_QUOTE_CHARS = 60


def _quoted(value: object) -> str:
    """``repr(value)`` for an error message, cut to a few dozen characters: a tool's error never
    quotes an argument whole (an argument of a megabyte would become megabytes of error text)."""
    text = repr(value)
    if len(text) <= _QUOTE_CHARS:
        return text
    return f"{text[:_QUOTE_CHARS - 12]}... ({len(text):,} characters)"


class KnapsackToolError(Exception):
    """A refused tool call; `str(error)` is exactly what the agent sees."""


class KnapsackEnvironment:
    """One episode's state: inspected items, taken items, finished flag."""

    def __init__(self, instance: TaskInstance, strict_take: bool = True) -> None:
        self._instance = instance
        self._strict_take = strict_take
        self._items = instance.private.items
        self._allowed = frozenset(instance.public.allowed_classes)
        self._capacity = instance.public.capacity
        self._budget = instance.public.inspect_budget
        self._inspected: list[str] = []
        self._inspected_set: set[str] = set()
        self._taken: list[str] = []
        self._taken_set: set[str] = set()
        self._finished = False
        self._weight = 0
        self._value = 0
        self._listing = json.dumps(sorted(instance.public.item_ids))

    # -- read-only views -------------------------------------------------
    @property
    def instance(self) -> TaskInstance:
        return self._instance

    @property
    def strict_take(self) -> bool:
        return self._strict_take

    @property
    def inspected(self) -> list[str]:
        """Distinct items inspected, in order of first inspection."""
        return list(self._inspected)

    @property
    def taken(self) -> list[str]:
        return list(self._taken)

    @property
    def budget_left(self) -> int:
        return self._budget - len(self._inspected)

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def total_value(self) -> int:
        return self._value

    @property
    def total_weight(self) -> int:
        return self._weight

    # -- tools -----------------------------------------------------------
    def list_items(self) -> str:
        """JSON list of every item id, sorted.

        Sorted as the paper's environment returns them: the file keeps
        generation order, where item 0 is always of an allowed class, so
        handing that order to the agent would leak a hint.
        """
        return self._listing

    def inspect(self, item_id: str) -> str:
        """Reveal class, value and weight; one budget unit per distinct item."""
        self._require_known(item_id)
        if item_id not in self._inspected_set:
            if not self.budget_left:
                raise KnapsackToolError(
                    f"Inspect budget exhausted ({self._budget}/{self._budget} used); "
                    f"item {_quoted(item_id)} was not inspected. Already inspected items can "
                    "still be inspected again for free."
                )
            self._inspected.append(item_id)
            self._inspected_set.add(item_id)
        return self._describe(item_id)

    def take_item(self, item_id: str) -> str:
        """Put an item in the knapsack, or refuse with the state unchanged."""
        self._require_known(item_id)
        if item_id in self._taken_set:
            raise KnapsackToolError(f"Item {_quoted(item_id)} is already in the knapsack.")
        if self._strict_take and item_id not in self._inspected_set:
            raise KnapsackToolError(
                f"Item {_quoted(item_id)} has not been inspected; inspect it before taking it."
            )
        item = self._items[item_id]
        if item.class_ not in self._allowed:
            raise KnapsackToolError(
                f"Item {_quoted(item_id)} cannot be taken: its class is not allowed. It was not taken."
            )
        room = self._capacity - self._weight
        if item.weight > room:
            weight = f" (weight {item.weight})" if item_id in self._inspected_set else ""
            raise KnapsackToolError(
                f"Item {_quoted(item_id)}{weight} does not fit: {self._weight}/{self._capacity} "
                f"capacity used, {room} remaining. It was not taken."
            )
        self._taken.append(item_id)
        self._taken_set.add(item_id)
        self._weight += item.weight
        self._value += item.value
        return json.dumps({"taken": item_id, "remaining_capacity": self._capacity - self._weight})

    def finish(self) -> str:
        """Mark the episode finished; it ends after the current step."""
        self._finished = True
        return json.dumps(
            {
                "finished": True,
                "items_taken": len(self._taken),
                "total_weight": self._weight,
                "capacity": self._capacity,
            }
        )

    # -- state for Inspect's sample store ---------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable mutable state (the instance itself is not included)."""
        return {
            "inspected": list(self._inspected),
            "taken": list(self._taken),
            "finished": self._finished,
        }

    @classmethod
    def from_state(
        cls, instance: TaskInstance, state: dict[str, Any], strict_take: bool = True
    ) -> KnapsackEnvironment:
        """Rebuild an environment from `to_state()`; refuses state that does not fit the instance."""
        environment = cls(instance, strict_take=strict_take)
        inspected = list(state.get("inspected", []))
        taken = list(state.get("taken", []))
        for item_id in inspected + taken:
            if item_id not in environment._items:
                raise ValueError(f"state names unknown item id {_quoted(item_id)}")
        if len(set(inspected)) != len(inspected) or len(set(taken)) != len(taken):
            raise ValueError("state lists an item twice")
        if len(inspected) > environment._budget:
            raise ValueError("state inspected more items than the budget allows")
        environment._inspected = inspected
        environment._inspected_set = set(inspected)
        environment._taken = taken
        environment._taken_set = set(taken)
        environment._weight = sum(environment._items[i].weight for i in taken)
        environment._value = sum(environment._items[i].value for i in taken)
        if environment._weight > environment._capacity:
            raise ValueError("state's taken items exceed the capacity")
        environment._finished = bool(state.get("finished", False))
        return environment

    # -- helpers -----------------------------------------------------------
    def _require_known(self, item_id: object) -> None:
        if not isinstance(item_id, str):
            raise KnapsackToolError(
                "Item ids are strings like those from list_items(); "
                f"got {type(item_id).__name__} {_quoted(item_id)}."
            )
        if item_id not in self._items:
            raise KnapsackToolError(
                f"Unknown item id {_quoted(item_id)}. Call list_items() for the valid ids."
            )

    def _describe(self, item_id: str) -> str:
        item = self._items[item_id]
        return json.dumps({"class": item.class_, "value": item.value, "weight": item.weight})
