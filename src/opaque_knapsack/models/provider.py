"""Registers the ``scripted`` model provider; the class is imported lazily."""

from inspect_ai.model import ModelAPI, modelapi


@modelapi(name="scripted")
def scripted() -> type[ModelAPI]:
    from opaque_knapsack.models.scripted import ScriptedPolicyAPI

    return ScriptedPolicyAPI
