"""The Inspect sandbox providers ``persistent_python`` and ``stateless_python``.

Both give each sample its own kernel (see ``kernel.py``) and working directory;
they differ only in their ``RuntimeSemantics``, looked up here, once. Select one with ``--sandbox persistent_python``
or ``--sandbox stateless_python`` (optionally with a ``RuntimeConfig``).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, overload

from inspect_ai.util import (
    ExecResult,
    OutputLimitExceededError,
    SandboxEnvironment,
    SandboxEnvironmentConfigType,
    SandboxEnvironmentLimits,
    SandboxUserUnsupportedError,
    sandbox,
    sandboxenv,
)
from pydantic import BaseModel

from opaque_knapsack.limits import EpisodeLimits
from opaque_knapsack.records import PERSISTENT, SEMANTICS, STATELESS, RuntimeSemantics

from . import _fs
from ._wire import EXEC_ERROR_MARKER
from .config import RuntimeConfig
from .kernel import (
    KERNEL_SCRIPT,
    WORKDIR_PREFIX,
    Kernel,
    KernelError,
    Protection,
    existing_paths,
    kernel_env,
    kill_all_kernels,
    live_kernels,
    python_paths,
    stop_zygote_if_idle,
)
from .launcher import kill_group, open_files_advice
from .protocol import StepResult
from .registry import REGISTRY

_EXEC_READ_ONLY = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/dev/urandom", "/dev/zero"]


def _resolve_config(config: SandboxEnvironmentConfigType | None) -> RuntimeConfig:
    if config is None:
        return RuntimeConfig()
    if isinstance(config, RuntimeConfig):
        return config
    if isinstance(config, BaseModel):
        return RuntimeConfig.model_validate(config.model_dump())
    text = Path(config).read_text()
    if config.endswith((".yaml", ".yml")):
        import yaml

        return RuntimeConfig.model_validate(yaml.safe_load(text) or {})
    return RuntimeConfig.model_validate_json(text)


class PythonRuntimeSandbox(SandboxEnvironment):
    """A sample's Python runtime: a ``PythonRuntime`` for the agent, plus the sandbox contract.

    ``exec`` runs a command in the working directory under the same isolation as
    the kernel (scrubbed environment, private uid, Landlock, seccomp) but with a
    profile that allows child processes. ``read_file``/``write_file`` are confined
    to the working directory: any path that resolves outside it is a PermissionError.
    """

    base_semantics: ClassVar[RuntimeSemantics]
    """The runtime this provider runs; a config's ``stateless_keep_files`` adds kept files."""

    def __init__(self, kernel: Kernel, starting: asyncio.Task[None] | None = None) -> None:
        super().__init__()
        self.kernel = kernel
        self._exec_pids: set[int] = set()
        self._starting = starting

    async def _started(self) -> None:
        """Wait for the kernel started in the background by ``sample_init``; its failure is raised once."""
        task, self._starting = self._starting, None
        if task is None:
            return
        waited = time.monotonic()
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                return  # the start was stopped by a cleanup: the kernel says so when used
            self._starting = task  # we were cancelled, not the start: wait again next time
            raise
        finally:
            if task.done():
                REGISTRY.launch_stats.waits.append(time.monotonic() - waited)

    @property
    def workdir(self) -> str:
        return self.kernel.control.workdir

    @property
    def protection(self) -> Protection:
        return self.kernel.control.protection

    @property
    def semantics(self) -> RuntimeSemantics:
        """What this runtime keeps between steps, files included (the prompt says so)."""
        return self.kernel.semantics

    @property
    def limits(self) -> EpisodeLimits:
        """The config's step limits, which hold where ``run_code`` is given none."""
        return self.kernel.control.config.limits()

    @property
    def prebound_names(self) -> list[str]:
        """Global names the kernel binds before every step (the config's ``prebound_modules``)."""
        return sorted({name.split(".")[0] for name in self.kernel.control.config.prebound_modules})

    @property
    def echoes_last_expression(self) -> bool:
        """``echo_last_expression``: a bare final expression's value is shown (the prompt says so)."""
        return self.kernel.control.config.echo_last_expression

    async def run_code(
        self,
        code: str,
        host_functions: Mapping[str, Callable[..., Any]] | None = None,
        *,
        max_tool_calls: int | None = None,
        timeout: float | None = None,
    ) -> StepResult:
        """Run one code block in this sample's kernel.

        Args:
          code: Python source of the block.
          host_functions: Callables (sync or async) exposed to the code under these
            names; each call crosses to the harness and back. A host function's
            exception reaches the code as ``ToolError(str(exc))``.
          max_tool_calls: Host-function calls allowed in this block (default: the
            config's); calls beyond it raise ``ToolCallLimitError`` without reaching the host.
          timeout: Wall-time limit in seconds (default: the config's step_timeout).
        """
        await self._started()
        return await self.kernel.run_code(code, host_functions, max_tool_calls=max_tool_calls, timeout=timeout)

    # ---- lifecycle -------------------------------------------------------------

    @classmethod
    def config_deserialize(cls, config: dict[str, Any]) -> BaseModel:
        return RuntimeConfig(**config)

    @classmethod
    async def task_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None) -> None:
        _resolve_config(config)  # fail early on a bad config

    @classmethod
    async def sample_init(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, metadata: dict[str, str]
    ) -> dict[str, SandboxEnvironment]:
        # The kernel starts in the background: under a burst its start (a turn in
        # the zygote's queue) overlaps the model's first reply, and the sample
        # waits for it only at its first code block. A start that fails is that
        # sample's error, raised there.
        resolved = _resolve_config(config)
        kernel = Kernel(resolved.semantics(cls.base_semantics), resolved)
        kernel.task_name = task_name
        starting = asyncio.get_running_loop().create_task(_start_kernel(kernel))
        REGISTRY.starting[id(kernel)] = (kernel, starting)
        starting.add_done_callback(lambda _t: REGISTRY.starting.pop(id(kernel), None))
        return {"default": cls(kernel, starting)}

    @classmethod
    async def sample_cleanup(
        cls,
        task_name: str,
        config: SandboxEnvironmentConfigType | None,
        environments: dict[str, SandboxEnvironment],
        interrupted: bool,
    ) -> None:
        for environment in environments.values():
            if isinstance(environment, PythonRuntimeSandbox):
                await environment.close()

    @classmethod
    async def task_cleanup(cls, task_name: str, config: SandboxEnvironmentConfigType | None, cleanup: bool) -> None:
        # Samples clean up after themselves; this catches any a crash left behind
        # (only this task's: other tasks may be running in the same process).
        starting = [kernel for kernel, _task in REGISTRY.starting.values()]
        for kernel in {id(k): k for k in [*live_kernels(), *starting]}.values():
            if kernel.semantics.name == cls.base_semantics.name and kernel.task_name == task_name:
                await _cancel_start(kernel)
                await kernel.close()
        # The last task to finish also stops the zygote (the next kernel restarts it).
        await stop_zygote_if_idle()

    @classmethod
    async def cli_cleanup(cls, id: str | None) -> None:
        kill_all_kernels()
        _kill_orphaned_kernels()
        _remove_orphaned_workdirs()

    async def close(self) -> None:
        self._starting = None
        await _cancel_start(self.kernel)
        for pid in list(self._exec_pids):
            kill_group(pid)
        await self.kernel.close()

    # ---- exec ----------------------------------------------------------------------

    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: int | None = None,
        timeout_retry: bool = True,
        concurrency: bool = True,
    ) -> ExecResult[str]:
        if user is not None:
            raise SandboxUserUnsupportedError(f"{type(self).__name__} runs commands only as its own unprivileged user")
        workdir = self.kernel.control.workdir
        run_cwd = workdir if cwd is None else os.path.join(workdir, cwd)
        cfg = self.kernel.control.confinement_cfg()
        cfg.update(
            read_only_paths=existing_paths(python_paths(self.kernel.control.config.allow_site_packages) + _EXEC_READ_ONLY),
            read_write_paths=[workdir, "/dev/null"],
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-S", "-s", KERNEL_SCRIPT, "exec", json.dumps(cfg), "--", *cmd,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=run_cwd,
            env={**kernel_env(workdir), **(env or {})},
            process_group=0,
        )
        self._exec_pids.add(proc.pid)
        data = input.encode() if isinstance(input, str) else input
        limit = timeout if timeout is not None else self.kernel.control.config.exec_timeout
        try:
            async with asyncio.timeout(limit):
                out, err = await proc.communicate(data)
        except TimeoutError:
            raise TimeoutError(f"command timed out after {limit} seconds: {cmd!r}") from None
        finally:
            kill_group(proc.pid)
            if proc.returncode is None:
                await proc.wait()
            self._exec_pids.discard(proc.pid)
        stderr = err.decode("utf-8", "replace")
        if EXEC_ERROR_MARKER in stderr:
            code = int(stderr.rsplit(EXEC_ERROR_MARKER, 1)[1].strip() or 0)
            stderr = stderr.split(EXEC_ERROR_MARKER, 1)[0]
            if code == errno.EACCES:
                raise PermissionError(code, f"cannot execute {cmd[0]!r}: permission denied", cmd[0])
        returncode = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        cap = SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE
        return ExecResult(
            success=returncode == 0,
            returncode=returncode,
            stdout=out[-cap:].decode("utf-8", "replace"),
            stderr=stderr.encode()[-cap:].decode("utf-8", "replace"),
        )

    # ---- files -----------------------------------------------------------------------

    def _may(self, st: os.stat_result, bit: int) -> bool:
        """Access as the kernel's user would have it (the harness may be root)."""
        uid = self.kernel.control.uid if self.kernel.control.uid is not None else os.geteuid()
        if uid == 0:
            return True
        if st.st_uid == uid:
            return bool((st.st_mode >> 6) & bit)
        if st.st_gid == uid:
            return bool((st.st_mode >> 3) & bit)
        return bool(st.st_mode & bit)

    def _fchown(self, fd: int) -> None:
        if self.kernel.control.uid is not None:
            os.fchown(fd, self.kernel.control.uid, self.kernel.control.uid)

    def _open(self, file: str, flags: int, make_parents: bool = False) -> int:
        """Open ``file`` inside the working directory through descriptors (see ``_fs.open_beneath``).

        The kernel may swap any directory on the path for a symlink at any moment;
        resolution never leaves the directory and never follows a symlink, so the
        harness (perhaps root) neither reads nor creates anything outside it.
        """
        parts = _fs.split_beneath(self.kernel.control.workdir, file)
        root = os.open(self.kernel.control.workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return _fs.open_beneath(
                root, parts, flags | os.O_NONBLOCK, 0o644, make_parents=make_parents, on_created_dir=self._fchown
            )
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", file) from None
        except IsADirectoryError:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", file) from None
        finally:
            os.close(root)

    def _write(self, file: str, contents: str | bytes) -> None:
        try:
            fd = self._open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, make_parents=True)
            created = True
        except FileExistsError:
            fd = self._open(file, os.O_WRONLY)
            created = False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PermissionError(errno.EACCES, "not a regular file", file)
            if created:
                self._fchown(fd)
            elif not self._may(st, 2):
                raise PermissionError(errno.EACCES, "Permission denied", file)
            os.ftruncate(fd, 0)
            data = contents.encode("utf-8") if isinstance(contents, str) else contents
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def _read(self, file: str, text: bool) -> str | bytes:
        try:
            fd = self._open(file, os.O_RDONLY)
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                raise IsADirectoryError(errno.EISDIR, "Is a directory", file) from None
            raise
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", file)
            if not stat.S_ISREG(st.st_mode) or not self._may(st, 4):
                raise PermissionError(errno.EACCES, "Permission denied", file)
            if st.st_size > SandboxEnvironmentLimits.MAX_READ_FILE_SIZE:
                raise OutputLimitExceededError(limit_str=SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, truncated_output=None)
            data = f.read(SandboxEnvironmentLimits.MAX_READ_FILE_SIZE + 1)
        if len(data) > SandboxEnvironmentLimits.MAX_READ_FILE_SIZE:
            raise OutputLimitExceededError(limit_str=SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, truncated_output=None)
        return data.decode("utf-8") if text else data

    async def write_file(self, file: str, contents: str | bytes) -> None:
        await asyncio.to_thread(self._write, file, contents)  # file I/O off the event loop

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        return await asyncio.to_thread(self._read, file, text)


@sandboxenv(name=SEMANTICS[PERSISTENT].sandbox)
class PersistentPythonSandbox(PythonRuntimeSandbox):
    """Persistent runtime: globals, imports and definitions live on from step to step."""

    base_semantics: ClassVar[RuntimeSemantics] = SEMANTICS[PERSISTENT]


@sandboxenv(name=SEMANTICS[STATELESS].sandbox)
class StatelessPythonSandbox(PythonRuntimeSandbox):
    """Stateless runtime: every step starts in a pristine interpreter."""

    base_semantics: ClassVar[RuntimeSemantics] = SEMANTICS[STATELESS]


def runtime_sandbox(name: str | None = None) -> PythonRuntimeSandbox:
    """The current sample's Python runtime (an error if its sandbox is another kind)."""
    environment = sandbox(name)
    try:  # Inspect hands out a proxy that records events; as_type unwraps it
        return environment.as_type(PythonRuntimeSandbox)
    except TypeError:
        raise TypeError(
            f"the sample's sandbox is {type(getattr(environment, '_sandbox', environment)).__name__}, "
            "not a Python runtime: run the task with sandbox 'persistent_python' or 'stateless_python'"
        ) from None


async def _start_kernel(kernel: Kernel) -> None:
    started = time.monotonic()
    try:
        await kernel.start()
    except OSError as exc:
        kernel.kill()
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            raise KernelError(open_files_advice()) from None
        raise
    except BaseException:
        kernel.kill()
        raise
    REGISTRY.launch_stats.starts.append(time.monotonic() - started)


async def _cancel_start(kernel: Kernel) -> None:
    """Stop a kernel's background start (before closing it: a start must not outlive its close)."""
    _kernel, task = REGISTRY.starting.pop(id(kernel), (None, None))
    if task is not None and not task.done():
        task.cancel()
    if task is not None:
        await asyncio.gather(task, return_exceptions=True)


def _kill_orphaned_kernels() -> int:
    """Kill kernel processes whose harness is gone (``inspect sandbox cleanup``)."""
    import psutil

    killed = 0
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = proc.info.get("cmdline") or []
        if KERNEL_SCRIPT in cmdline and not psutil.pid_exists(_harness_pid(cmdline) or 1 << 30):
            try:
                proc.kill()
                killed += 1
            except psutil.Error:
                pass
    return killed


def _remove_orphaned_workdirs() -> int:
    """Remove kernel working directories whose harness is gone (a SIGKILLed harness cleans nothing up)."""
    import shutil
    import tempfile

    import psutil

    removed = 0
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{WORKDIR_PREFIX}*-*"):
        owner = path.name[len(WORKDIR_PREFIX):].partition("-")[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _harness_pid(cmdline: list[str]) -> int | None:
    try:
        cfg = json.loads(cmdline[cmdline.index(KERNEL_SCRIPT) + 2])
        return int(cfg["harness_pid"])
    except (ValueError, IndexError, KeyError, TypeError):
        return None
