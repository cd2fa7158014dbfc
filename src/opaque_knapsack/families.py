"""The task families: one line each, its name and where its declaration (a ``TaskFamily``) lives.

Everything generic finds a family here: the Inspect entry point
(``_registry.py``) imports each family's task so ``inspect eval
opaque_knapsack/<name>`` finds it, and ``generate``, the quickstart and the
``scripted`` provider's ``-M family`` look a family up by the name a user
types. Declarations are imported on first use, so this module is as cheap to
import as the command line needs it to be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opaque_knapsack.records import TASK_NAME

if TYPE_CHECKING:
    from opaque_knapsack.solvers.family import TaskFamily

FAMILIES: dict[str, str] = {
    TASK_NAME: "opaque_knapsack.knapsack.family:KNAPSACK",
    "guess": "opaque_knapsack.guess.family:GUESS",
}
"""Family name -> ``module:attribute`` of its declaration. Add a family with one line here."""

DEFAULT_FAMILY = TASK_NAME


class UnknownFamily(ValueError):
    """A family name that is not registered: one line naming the flag and the choices."""

    def __init__(self, name: str, flag: str = "--family") -> None:
        super().__init__(f"{flag} {name!r} is not a task family (choices: {', '.join(FAMILIES)})")


def task_family(name: str, flag: str = "--family") -> TaskFamily:
    """The declaration of the family called ``name``; ``flag`` names where the user typed it."""
    from importlib import import_module

    reference = FAMILIES.get(name)
    if reference is None:
        raise UnknownFamily(name, flag)
    module, _, attribute = reference.partition(":")
    family: TaskFamily = getattr(import_module(module), attribute)
    return family
