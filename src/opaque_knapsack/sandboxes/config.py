"""Settings of the Python runtimes (the sandbox config of both providers)."""

from __future__ import annotations

import importlib.util

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opaque_knapsack.limits import PAPER_LIMITS, EpisodeLimits
from opaque_knapsack.records import RuntimeSemantics


class RuntimeConfig(BaseModel):
    """Limits and isolation settings of a persistent or stateless Python runtime.

    Pass as the sandbox config, e.g.
    ``SandboxEnvironmentSpec("stateless_python", RuntimeConfig(step_timeout=10))``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_timeout: float = Field(default=PAPER_LIMITS.step_timeout, gt=0)
    """Wall-time limit of one code block, in seconds (run_code may lower or raise it per call;
    the agents do only when the user set ``-T step_timeout``)."""

    memory_mb: int = Field(default=1024, ge=64)
    """Address-space limit of the kernel's processes (RLIMIT_AS), in MiB."""

    max_output_chars: int = Field(default=20_000, ge=100)
    """Longest stdout a step returns; beyond it the middle is cut and a marker says how much."""

    max_tool_calls: int = Field(default=PAPER_LIMITS.max_tool_calls, ge=0)
    """Per-block limit on host-function calls (run_code's max_tool_calls overrides it; the
    agents pass one only when the user set ``-T max_tool_calls``)."""

    max_message_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    """Largest frame either side accepts on a kernel channel; a larger one is a protocol violation.

    Parsing a frame holds the harness's event loop, so this bounds the longest
    stall one frame can cause; frames for results are always allowed
    ``8 * max_output_chars`` bytes plus headroom, so a result never exceeds it."""

    max_file_mb: int = Field(default=64, ge=1)
    """Largest file the kernel may write (RLIMIT_FSIZE), in MiB."""

    max_processes: int = Field(default=64, ge=8)
    """RLIMIT_NPROC for the kernel's private uid (threads count); applied only when running as root."""

    max_open_files: int = Field(default=128, ge=32)
    """RLIMIT_NOFILE of the kernel's processes."""

    allow_site_packages: bool = True
    """Let the agent's code import installed third-party packages (read-only)."""

    require_isolation: bool = False
    """Refuse to start when Landlock, seccomp or the uid drop is unavailable, instead of degrading."""

    exec_timeout: int = Field(default=300, ge=1)
    """Default timeout of ``exec()`` commands without their own, in seconds."""

    prebound_modules: tuple[str, ...] = ("json",)
    """Modules bound as globals before the agent's code runs, as the paper's
    interpreter binds ``json`` in both runtimes (so ``json.loads`` without an
    import is not a NameError). The stateless runtime binds them afresh, in a
    pristine interpreter, at every step; they are not listed among the user's
    globals unless the code rebinds the name."""

    @field_validator("prebound_modules")
    @classmethod
    def _importable(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not name or not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"{name!r} is not a module name")
            if importlib.util.find_spec(name.split(".")[0]) is None:
                raise ValueError(f"module {name!r} cannot be imported")
        return names

    echo_last_expression: bool = False
    """Show the ``repr`` of a bare final expression after the printed output, as a
    notebook cell does (``x + 41`` as the last line shows ``42``). Off by default:
    the paper's interpreter only executes, and the model sees what the code
    printed; the echo changes observations, tokens and how a model recovers from
    a missing ``print``. The CodeAct prompt says which of the two the runtime does."""

    stateless_keep_files: bool = False
    """Stateless runtime: keep the files a step writes for later steps (a "stateless
    interpreter, persistent disk" condition). By default every step gets a fresh working
    directory (the old one and everything in it goes), so the conversation is the only memory."""

    step_ceiling_factor: float = Field(default=4.0, ge=1.0)
    """Hard ceiling of a step, as a multiple of its time limit plus grace, on the step
    clock (``_clock.py``) crediting only the time host functions ran as the harness
    measured it (the kernel's timestamps are not trusted for it): a step is killed
    past it whatever it claims about its tool calls. A wall cap of 8 times the
    ceiling, at least 5 minutes (wall time less host functions' time), ends a step
    that gets no CPU at all."""

    def semantics(self, runtime: RuntimeSemantics) -> RuntimeSemantics:
        """What ``runtime`` keeps between steps under this config (``stateless_keep_files`` keeps files)."""
        return runtime.keeping_files() if self.stateless_keep_files else runtime

    def limits(self) -> EpisodeLimits:
        """The episode limits a runtime with this config applies when its caller sets none."""
        return PAPER_LIMITS.updated(step_timeout=self.step_timeout, max_tool_calls=self.max_tool_calls)
