"""The knapsack tools as native Inspect tools: the schema the model sees, and refusals as ToolErrors."""

from __future__ import annotations

import asyncio
import json

import pytest
from inspect_ai.tool import ToolDef, ToolError
from inspect_ai.util import Store

import opaque_knapsack.solvers.episode as episode_module
from opaque_knapsack.knapsack import PRESETS, generate_instance
from opaque_knapsack.knapsack.episode import start_episode
from opaque_knapsack.knapsack.tools import knapsack_tools
from opaque_knapsack.records import ENVIRONMENT_KEY


def test_tool_names_and_arguments_match_the_runtime_tools() -> None:
    definitions = {ToolDef(tool).name: ToolDef(tool) for tool in knapsack_tools()}
    assert list(definitions) == ["list_items", "inspect", "take_item", "finish"]
    assert list(definitions["inspect"].parameters.properties) == ["item_id"]
    assert "budget" in definitions["inspect"].description
    assert definitions["finish"].parameters.properties == {}


def test_calls_reach_the_episode_and_refusals_are_tool_errors(monkeypatch) -> None:
    sample_store = Store()
    monkeypatch.setattr(episode_module, "store", lambda: sample_store)
    instance = generate_instance(PRESETS["easy"], 0, 0)
    start_episode(instance, strict_take=True, sample_store=sample_store)
    list_items, inspect_item, take_item, finish = knapsack_tools()
    ids = json.loads(asyncio.run(list_items()))
    assert ids == sorted(instance.public.item_ids)
    with pytest.raises(ToolError):
        asyncio.run(take_item(ids[0]))  # not inspected first (strict rule)
    revealed = json.loads(asyncio.run(inspect_item(ids[0])))
    assert revealed["value"] == instance.private.items[ids[0]].value
    assert sample_store.get(ENVIRONMENT_KEY)["inspected"] == [ids[0]]  # synced after every call
    asyncio.run(finish())
    assert sample_store.get(ENVIRONMENT_KEY)["finished"] is True
