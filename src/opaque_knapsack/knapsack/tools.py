"""The four knapsack tools as native Inspect tools, bound to the sample's episode.

Used by the ReAct baseline (through the model's function calling) and by
people who bring their own solver. Each call goes to the same hidden
environment the CodeAct runtime's host functions use.
"""

from __future__ import annotations

from inspect_ai.tool import Tool, ToolError, tool

from opaque_knapsack.knapsack import KnapsackToolError
from opaque_knapsack.knapsack.episode import current_episode


def _call(name: str, *args: str) -> str:
    episode = current_episode()
    try:
        result = episode.call(name, *args)
    except KnapsackToolError as error:
        raise ToolError(str(error)) from None
    finally:
        episode.sync()
    return result


@tool(name="list_items")
def list_items() -> Tool:
    async def execute() -> str:
        """List the ids of all items in this instance.

        Returns:
            A JSON list of item ids.
        """
        return _call("list_items")

    return execute


@tool(name="inspect")
def inspect_item() -> Tool:
    async def execute(item_id: str) -> str:
        """Reveal one item's class, value and weight.

        Each distinct item costs one unit of the inspect budget; inspecting the
        same item again is free and returns the same answer.

        Args:
            item_id: The id of the item to inspect.

        Returns:
            JSON {"class": str, "value": int, "weight": int}.
        """
        return _call("inspect", item_id)

    return execute


@tool(name="take_item")
def take_item() -> Tool:
    async def execute(item_id: str) -> str:
        """Put an item in the knapsack (cannot be undone).

        Refused, with nothing changed, if the id is unknown, the item is already
        taken, its class is not allowed, it would exceed the capacity, or (by
        default) it was not inspected first.

        Args:
            item_id: The id of the item to take.

        Returns:
            A short JSON confirmation with the remaining capacity.
        """
        return _call("take_item", item_id)

    return execute


@tool(name="finish")
def finish() -> Tool:
    async def execute() -> str:
        """End the episode once you have taken the items you want.

        Returns:
            A confirmation.
        """
        return _call("finish")

    return execute


def knapsack_tools() -> list[Tool]:
    """list_items, inspect, take_item and finish, bound to the current sample."""
    return [list_items(), inspect_item(), take_item(), finish()]
