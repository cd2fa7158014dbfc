"""What Inspect discovers through the package's ``inspect_ai`` entry point.

Only registrations live here: every registered task family's task (and with
it its scorer), the two runtime sandbox providers, the agents and the
``scripted`` model provider.
"""

# ruff: noqa: F401
from opaque_knapsack.families import FAMILIES, task_family
from opaque_knapsack.models.provider import scripted
from opaque_knapsack.sandboxes import PersistentPythonSandbox, StatelessPythonSandbox
from opaque_knapsack.solvers.codeact import codeact
from opaque_knapsack.solvers.react import react

for _name in FAMILIES:
    _family = task_family(_name)
    _family.load(_family.task)
