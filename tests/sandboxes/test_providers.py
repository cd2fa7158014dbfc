"""The providers inside Inspect: registration, lifecycle, eval, concurrency, cleanup."""

from __future__ import annotations

import asyncio
import os

import pytest
from inspect_ai import Task, eval_async
from inspect_ai.dataset import Sample
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import SandboxEnvironmentSpec
from inspect_ai.util._sandbox.registry import registry_find_sandboxenv
from polling import async_wait_until
from pydantic import ValidationError

from opaque_knapsack.sandboxes import (
    PersistentPythonSandbox,
    RuntimeConfig,
    StatelessPythonSandbox,
    runtime_sandbox,
)
from opaque_knapsack.sandboxes.kernel import KernelError, live_kernels

from .conftest import kernel_processes, zygote_processes


def test_unqualified_names_resolve_to_the_providers() -> None:
    assert registry_find_sandboxenv("persistent_python") is PersistentPythonSandbox
    assert registry_find_sandboxenv("stateless_python") is StatelessPythonSandbox


def test_config_deserialize_is_frozen_and_strict() -> None:
    config = PersistentPythonSandbox.config_deserialize({"step_timeout": 5, "memory_mb": 512})
    assert isinstance(config, RuntimeConfig) and config.step_timeout == 5
    with pytest.raises(ValidationError, match="frozen"):
        config.step_timeout = 1  # type: ignore[misc]
    with pytest.raises(ValidationError, match="no_such_field"):
        PersistentPythonSandbox.config_deserialize({"no_such_field": 1})
    spec = SandboxEnvironmentSpec.model_validate({"type": "stateless_python", "config": {"max_output_chars": 500}})
    assert spec.config == RuntimeConfig(max_output_chars=500)


async def test_sample_cleanup_leaves_no_process_or_workdir() -> None:
    envs = await StatelessPythonSandbox.sample_init("t", None, {})
    env = envs["default"]
    assert isinstance(env, StatelessPythonSandbox)
    assert (await env.run_code("print(1)")).stdout == "1\n"
    assert kernel_processes()
    workdir = env.workdir
    await StatelessPythonSandbox.sample_cleanup("t", None, envs, interrupted=True)
    assert kernel_processes() == []
    assert not os.path.exists(workdir)


async def test_exec_is_confined_and_scrubbed(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-exec-secret")
    secret = tmp_path / "tasks.json"
    secret.write_text("reference answer")
    os.chmod(tmp_path, 0o755)
    os.chmod(secret, 0o644)
    envs = await PersistentPythonSandbox.sample_init("t", None, {})
    env = envs["default"]
    try:
        result = await env.exec(["sh", "-c", f"env; id -u; cat {secret}; kill -9 {os.getpid()}; echo done"])
        assert "sk-exec-secret" not in result.stdout
        assert "reference answer" not in result.stdout
        assert result.stdout.strip().endswith("done")
        assert f"HOME={env.workdir}" in result.stdout
        with pytest.raises(PermissionError):
            await env.read_file(str(secret))
        with pytest.raises(PermissionError):
            await env.read_file("../" + os.path.basename(env.workdir) + "/../" + str(secret.relative_to("/")))
        await env.exec(["ln", "-s", str(secret), "link"])
        with pytest.raises(PermissionError):
            await env.read_file("link")
    finally:
        await PersistentPythonSandbox.sample_cleanup("t", None, envs, False)


async def test_runtime_sandbox_outside_a_sample_is_a_clear_error() -> None:
    with pytest.raises(ProcessLookupError, match="No sandbox environment"):
        runtime_sandbox()


async def test_fifty_concurrent_runtimes_do_not_cross_talk() -> None:
    async def one(i: int) -> None:
        cls = PersistentPythonSandbox if i % 2 else StatelessPythonSandbox
        envs = await cls.sample_init("t", None, {})
        env = envs["default"]
        assert isinstance(env, cls)
        try:
            seen: list[int] = []

            def whoami(n: int) -> int:
                seen.append(n)
                return i

            for _step in range(3):
                result = await env.run_code(f"mine = whoami({i})\nprint(mine)", {"whoami": whoami})
                assert result.stdout == f"{i}\n", result
            assert seen == [i, i, i]
            if cls is PersistentPythonSandbox:
                assert (await env.run_code("print(mine)")).stdout == f"{i}\n"
        finally:
            await cls.sample_cleanup("t", None, envs, False)

    await asyncio.gather(*(one(i) for i in range(50)))
    # A spare step process its kernel had not yet announced dies with the kernel (its
    # parent-death signal), just after the kernel's own end, which is what cleanup awaits.
    assert await async_wait_until(lambda: kernel_processes() == []), kernel_processes()


@solver
def _run_in_runtime() -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        runtime = runtime_sandbox()
        taken: list[str] = []
        first = await runtime.run_code("x = take_item('item_3f9a1c0b2e4d')", {"take_item": lambda i: taken.append(i) or "ok"})
        second = await runtime.run_code("print(x)")
        state.metadata["semantics"] = runtime.semantics.name
        state.metadata["second"] = second.model_dump()
        state.metadata["taken"] = taken
        assert first.error is None
        return state

    return solve


@solver
def _hang() -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        await runtime_sandbox().run_code("import time\ntime.sleep(60)", timeout=60)
        return state

    return solve


@pytest.mark.slow
@pytest.mark.parametrize("name", ["persistent_python", "stateless_python"])
async def test_inspect_eval_with_mockllm(name: str, tmp_path) -> None:
    task = Task(dataset=[Sample(input="go", id="knapsack-0000000001")], solver=_run_in_runtime(), sandbox=name)
    [log] = await eval_async(task, model="mockllm/model", log_dir=str(tmp_path))
    assert log.status == "success", log.error
    assert log.samples is not None
    meta = log.samples[0].metadata
    assert meta["taken"] == ["item_3f9a1c0b2e4d"]
    if name == "persistent_python":
        assert meta["semantics"] == "persistent" and meta["second"]["stdout"] == "ok\n"
    else:
        assert meta["semantics"] == "stateless" and meta["second"]["is_name_error"]
    assert kernel_processes() == []
    assert zygote_processes() == []  # the eval's cleanup stopped the zygote too
    assert live_kernels() == []


@pytest.mark.slow
async def test_cancelled_eval_leaves_no_kernel(tmp_path) -> None:
    task = Task(dataset=[Sample(input="go")], solver=_hang(), sandbox="persistent_python")
    run = asyncio.create_task(eval_async(task, model="mockllm/model", log_dir=str(tmp_path)))
    assert await async_wait_until(kernel_processes), "the sample never started its kernel"
    run.cancel()
    try:
        await run
    except (asyncio.CancelledError, Exception):
        pass
    await async_wait_until(lambda: not kernel_processes() and not zygote_processes())
    assert kernel_processes() == []
    assert zygote_processes() == []


async def test_task_cleanup_only_touches_its_own_task() -> None:
    mine = await PersistentPythonSandbox.sample_init("task_a", None, {})
    other = await PersistentPythonSandbox.sample_init("task_b", None, {})
    try:
        await PersistentPythonSandbox.task_cleanup("task_a", None, True)
        assert (await other["default"].run_code("print('b alive')")).stdout == "b alive\n"  # type: ignore[attr-defined]
        with pytest.raises(KernelError, match="cleaned up"):
            await mine["default"].run_code("1")  # type: ignore[attr-defined]
    finally:
        await PersistentPythonSandbox.sample_cleanup("task_b", None, other, False)
        await PersistentPythonSandbox.sample_cleanup("task_a", None, mine, False)
    assert kernel_processes() == []


async def test_the_kernel_starts_in_the_background_and_the_first_block_waits_for_it() -> None:
    from opaque_knapsack.sandboxes.registry import REGISTRY

    REGISTRY.launch_stats.clear()
    envs = await PersistentPythonSandbox.sample_init("t", None, {})
    env = envs["default"]
    try:
        assert env.kernel.control.pid is None  # sample_init did not wait for the kernel
        assert (await env.run_code("x = 41\nprint(x + 1)")).stdout == "42\n"
        assert env.kernel.control.pid is not None and len(REGISTRY.launch_stats.starts) == 1 and len(REGISTRY.launch_stats.waits) == 1
        assert (await env.run_code("print(x)")).stdout == "41\n"
        assert len(REGISTRY.launch_stats.waits) == 1  # only the first block waited
    finally:
        await PersistentPythonSandbox.sample_cleanup("t", None, envs, False)
    # a sample cleaned up before its kernel ever started leaves nothing behind
    envs = await StatelessPythonSandbox.sample_init("t", None, {})
    workdir = envs["default"].workdir
    await StatelessPythonSandbox.sample_cleanup("t", None, envs, False)
    await async_wait_until(lambda: not kernel_processes() and not os.path.exists(workdir))
    assert kernel_processes() == [] and not os.path.exists(workdir)
