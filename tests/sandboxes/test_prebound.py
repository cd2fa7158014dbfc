"""Pre-bound modules (the paper's interpreter binds ``json``) and the names bound at step start."""

from __future__ import annotations

import pydantic
import pytest

from opaque_knapsack.sandboxes import Kernel, RuntimeConfig


async def test_json_is_prebound_in_both_runtimes(kernel: Kernel) -> None:
    result = await kernel.run_code('print(json.loads("[1, 2]"))')
    assert result.error is None, result.error
    assert result.stdout == "[1, 2]\n"
    again = await kernel.run_code('print(json.dumps({"a": 1}))')
    assert again.error is None and again.stdout == '{"a": 1}\n'


async def test_prebound_module_is_not_listed_as_a_user_global(make_kernel) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel("persistent")
    result = await kernel.run_code("x = json.dumps(1)")
    assert result.globals == ["x"]
    explicit = await kernel.run_code("import json\ny = 2")
    assert explicit.globals == ["x", "y"]
    rebound = await kernel.run_code("json = 'mine'")
    assert rebound.globals == ["json", "x", "y"]


async def test_stateless_binds_a_pristine_module_at_every_step(make_kernel) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel("stateless")
    assert (await kernel.run_code("json.dumps = None\njson = 5")).error is None
    probe = await kernel.run_code("print(type(json).__name__, json.dumps([1]))")
    assert probe.error is None, probe.error
    assert probe.stdout == "module [1]\n"


async def test_persistent_keeps_a_rebinding_of_a_prebound_name(make_kernel) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel("persistent")
    assert (await kernel.run_code("json = 5")).error is None
    assert (await kernel.run_code("print(json)")).stdout == "5\n"


@pytest.mark.parametrize("semantics", ["persistent", "stateless"])
async def test_prebound_modules_are_a_setting(make_kernel, semantics: str) -> None:  # type: ignore[no-untyped-def]
    bare = await make_kernel(semantics, prebound_modules=())
    missing = await bare.run_code("json.dumps(1)")
    assert missing.is_name_error and "json" in missing.error.message
    more = await make_kernel(semantics, prebound_modules=("json", "math"))
    result = await more.run_code("print(math.floor(json.loads('2.5')))")
    assert result.error is None and result.stdout == "2\n"


def test_default_matches_the_paper_and_bad_names_are_refused() -> None:
    assert RuntimeConfig().prebound_modules == ("json",)
    with pytest.raises(pydantic.ValidationError, match="cannot be imported"):
        RuntimeConfig(prebound_modules=("no_such_module_anywhere",))
    with pytest.raises(pydantic.ValidationError, match="not a module name"):
        RuntimeConfig(prebound_modules=("json; import os",))


async def test_bound_at_start_reports_the_interpreters_names(kernel: Kernel) -> None:
    first = await kernel.run_code("a = 1\ndef f(): return a")
    assert first.bound_at_start == []
    second = await kernel.run_code("b = a + f()")
    if kernel.semantics.persists_state:
        assert second.bound_at_start == ["a", "f"]
        # only names the step's code mentions (bounded by the code, not the namespace)
        third = await kernel.run_code("print(b, f, not_bound_anywhere)")
        assert third.bound_at_start == ["b", "f"]
    else:
        assert second.is_name_error
        assert second.bound_at_start == []
