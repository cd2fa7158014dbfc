"""What the interpreter reports, as the paper's interpreter does: its globals list, the names
it holds at a step's start, and output that is only what the code printed."""

from __future__ import annotations

from opaque_knapsack.sandboxes import Kernel, RuntimeConfig


async def test_a_name_bound_to_none_is_a_global(make_kernel) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel("persistent")
    first = await kernel.run_code("best = None\ncount = 0")
    assert first.globals == ["best", "count"]
    second = await kernel.run_code("count += 1\nprint(best, count)")
    assert second.error is None and second.stdout == "None 1\n"
    assert second.bound_at_start == ["best", "count"]


async def test_a_tool_name_rebound_to_none_is_the_users(make_kernel) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel("persistent")
    result = await kernel.run_code("inspect = None", {"inspect": lambda item: item})
    assert result.globals == ["inspect"]


async def test_globals_line_leaves_out_modules_and_double_underscore_names(make_kernel) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel("persistent")
    first = await kernel.run_code("import math\nimport os.path as osp\n__hidden = 1\n_kept = 2\nroot = None")
    assert first.error is None, first.error
    assert first.globals == ["_kept", "root"]
    # what the interpreter holds is another fact: the module is state a later step reads
    second = await kernel.run_code("print(math.floor(2.5), osp.sep, __hidden, _kept, root)")
    assert second.error is None and second.stdout == "2 / 1 2 None\n"
    assert second.bound_at_start == ["__hidden", "_kept", "math", "osp", "root"]
    assert second.globals == ["_kept", "root"]


async def test_a_name_rebound_from_a_module_to_a_value_is_listed(make_kernel) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel("persistent")
    await kernel.run_code("import math")
    result = await kernel.run_code("math = 3")
    assert result.globals == ["math"]


async def test_a_bare_final_expression_is_not_echoed_by_default(kernel: Kernel) -> None:
    """The echo is an option (``test_semantics.py`` runs it); the model sees what the code printed."""
    result = await kernel.run_code("x = 1\nx + 41")
    assert result.error is None and result.stdout == ""
    printed = await kernel.run_code("print('seen')\n'not seen'")
    assert printed.stdout == "seen\n"


def test_the_default_follows_the_paper() -> None:
    assert RuntimeConfig().echo_last_expression is False
