"""What Inspect discovers through the package's ``inspect_ai`` entry point.

Only registrations live here: the task, the two runtime sandbox providers and
the ``scripted`` model provider. Each import is cheap and needs no extra.
"""

# ruff: noqa: F401
from opaque_knapsack.inspect_tasks.knapsack_task import knapsack
from opaque_knapsack.models.provider import scripted
from opaque_knapsack.sandboxes import PersistentPythonSandbox, StatelessPythonSandbox
from opaque_knapsack.scorers.knapsack import knapsack_scorer
from opaque_knapsack.solvers.codeact import codeact
from opaque_knapsack.solvers.react import react
