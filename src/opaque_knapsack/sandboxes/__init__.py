"""Persistent and stateless Python runtimes for untrusted agent code, as Inspect sandboxes.

Importing this package registers the sandbox providers ``persistent_python`` and
``stateless_python``. The agent's code runs in a separate, confined kernel
process; host functions (the task's tools) stay in the harness and are reached
through stubs. See README.md in this directory for the semantics and the
security guarantees.
"""

from .config import RuntimeConfig
from .kernel import Kernel, KernelError, Protection, kill_all_kernels, probe_protection
from .protocol import StepError, StepResult, ToolCallRecord
from .providers import (
    PersistentPythonSandbox,
    PythonRuntimeSandbox,
    StatelessPythonSandbox,
    runtime_sandbox,
)
from .runtime import PythonRuntime

__all__ = [
    "Kernel",
    "KernelError",
    "PersistentPythonSandbox",
    "Protection",
    "PythonRuntime",
    "PythonRuntimeSandbox",
    "RuntimeConfig",
    "StatelessPythonSandbox",
    "StepError",
    "StepResult",
    "ToolCallRecord",
    "kill_all_kernels",
    "probe_protection",
    "runtime_sandbox",
]
