"""What limits concurrency: the harness's descriptor limit is raised, or named clearly when it cannot be."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=240, check=False
    )


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one_when_the_zygote_starts() -> None:
    result = _run(
        """
        import asyncio, resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096))
        from opaque_knapsack.records import SEMANTICS
        from opaque_knapsack.sandboxes import Kernel, RuntimeConfig

        async def main():
            kernels = [Kernel(SEMANTICS["stateless"], RuntimeConfig()) for _ in range(40)]  # ~160 descriptors
            await asyncio.gather(*(k.start() for k in kernels))
            outs = await asyncio.gather(*(k.run_code("print(1)") for k in kernels))
            for k in kernels:
                await k.close()
            print(resource.getrlimit(resource.RLIMIT_NOFILE), {o.stdout for o in outs})

        asyncio.run(main())
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(4096, 4096) {'1\\n'}"


def test_a_hard_descriptor_limit_too_low_is_a_sample_error_that_says_what_to_do() -> None:
    result = _run(
        """
        import asyncio, resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
        from opaque_knapsack.sandboxes.providers import StatelessPythonSandbox
        from opaque_knapsack.sandboxes import kill_all_kernels

        async def main():
            envs, errors = [], []
            for _ in range(30):
                try:
                    envs.append(await StatelessPythonSandbox.sample_init("t", None, {}))
                    await envs[-1]["default"].run_code("print(1)")  # the kernel started in the background
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
            for env in envs:
                await StatelessPythonSandbox.sample_cleanup("t", None, env, False)
            print(len(envs) > 0, errors[0] if errors else "no error")

        asyncio.run(main())
        kill_all_kernels()
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    started, message = result.stdout.strip().split(" ", 1)
    assert started == "True"
    assert message.startswith("KernelError: the harness ran out of file descriptors (RLIMIT_NOFILE soft 48, hard 48)")
    assert "--max-samples" in message and "Traceback" not in result.stdout
