"""Registers the ``scripted`` model provider; the class is imported lazily."""

from inspect_ai.model import ModelAPI, modelapi

from opaque_knapsack.records import SCRIPTED_PROVIDER


@modelapi(name=SCRIPTED_PROVIDER)
def scripted() -> type[ModelAPI]:
    from opaque_knapsack.models.scripted import ScriptedPolicyAPI

    return ScriptedPolicyAPI
