"""What a step sees and returns, in each runtime: the semantics table of DESIGN.md."""

from __future__ import annotations

import pytest

from opaque_knapsack.sandboxes import Kernel


async def test_name_bound_in_step_one_is_visible_in_step_two_only_when_persistent(kernel: Kernel) -> None:
    first = await kernel.run_code("budget_left = 7")
    assert first.error is None
    second = await kernel.run_code("print(budget_left)")
    if kernel.semantics.persists_state:
        assert second.error is None and second.stdout == "7\n"
        assert not second.is_name_error
        assert second.globals == ["budget_left"]
    else:
        assert second.error is not None and second.error.type == "NameError"
        assert second.is_name_error
        assert "budget_left" in second.error.message
        assert second.globals is None


@pytest.mark.parametrize(
    ("setup", "probe", "persistent_value"),
    [
        ("import statistics", "print('statistics' in globals())", "True"),
        ("import math\nmath.tau = 1", "import math\nprint(math.tau)", "1"),
        ("import builtins\nbuiltins.len = lambda x: 42", "print(len([1]))", "42"),
        ("import builtins\nbuiltins.leaked = 5", "import builtins\nprint(hasattr(builtins, 'leaked'))", "True"),
        ("import sys\nsys.modules['fake_mod'] = 1", "import sys\nprint('fake_mod' in sys.modules)", "True"),
        (
            "import threading, time\nt = threading.Thread(target=time.sleep, args=(30,), daemon=True)\nt.start()",
            "import threading\nprint(threading.active_count() > 1)",
            "True",
        ),
    ],
    ids=["import", "module-attribute", "builtins-mutation", "builtins-new-name", "sys-modules", "thread"],
)
async def test_state_survives_only_in_persistent(kernel: Kernel, setup: str, probe: str, persistent_value: str) -> None:
    assert (await kernel.run_code(setup)).error is None
    result = await kernel.run_code(probe)
    assert result.error is None, result.error
    if kernel.semantics.persists_state:
        assert result.stdout.strip() == persistent_value
    else:
        assert result.stdout.strip() != persistent_value


async def test_open_files_do_not_survive_in_stateless(kernel: Kernel) -> None:
    first = await kernel.run_code("f = open('notes.txt', 'w')\nprint(f.fileno())")
    fd = int(first.stdout)
    probe = await kernel.run_code(f"import os\ntry:\n    os.fstat({fd}); print('open')\nexcept OSError:\n    print('closed')")
    assert probe.stdout.strip() == ("open" if kernel.semantics.persists_state else "closed")


async def test_persistent_globals_list_user_names_not_dunders_or_tools(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    result = await kernel.run_code(
        "import json as j\ndef helper(): pass\nclass Item: pass\n_private = 1\nx = list_items()",
        {"list_items": lambda: "[]"},
    )
    assert result.error is None
    assert result.globals == ["Item", "_private", "helper", "x"]  # the module `j` is not listed, as in the paper


@pytest.mark.parametrize("semantics", ["persistent", "stateless"])
async def test_print_and_last_expression_like_a_notebook(make_kernel, semantics: str) -> None:  # type: ignore[no-untyped-def]
    kernel = await make_kernel(semantics, echo_last_expression=True)
    result = await kernel.run_code("print('a')\nprint('b', end='')\n{'k': [1, 2]}")
    assert result.stdout == "a\nb{'k': [1, 2]}\n"
    assert (await kernel.run_code("x = 3\nNone")).stdout == ""
    assert (await kernel.run_code("'text'")).stdout == "'text'\n"
    assert (await kernel.run_code("1 + 1  # comment\n")).stdout == "2\n"


async def test_stderr_is_merged_into_stdout(kernel: Kernel) -> None:
    result = await kernel.run_code("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert result.stdout == "out\nerr\n"


async def test_exception_traceback_shows_only_user_frames(kernel: Kernel) -> None:
    result = await kernel.run_code("print('before')\ndef f(d):\n    return d['missing']\nf({})")
    assert result.stdout == "before\n"
    assert result.error is not None
    assert result.error.type == "KeyError"
    assert result.error.message == "'missing'"
    tb = result.error.traceback
    assert tb.startswith("Traceback (most recent call last):")
    assert 'line 4, in <module>' in tb and "line 3, in f" in tb and "return d['missing']" in tb
    assert "_kernel.py" not in tb and "_confine.py" not in tb
    assert not result.is_name_error


async def test_syntax_error_is_reported(kernel: Kernel) -> None:
    result = await kernel.run_code("def broken(:\n    pass")
    assert result.error is not None and result.error.type == "SyntaxError"
    assert "_kernel.py" not in result.error.traceback


async def test_unbound_local_counts_as_name_error(kernel: Kernel) -> None:
    result = await kernel.run_code("def f():\n    print(y)\n    y = 1\nf()")
    assert result.error is not None and result.error.type == "UnboundLocalError"
    assert result.is_name_error


async def test_name_error_carries_the_undefined_name_from_the_kernel(kernel: Kernel) -> None:
    missing = await kernel.run_code("total = price_of_item * 2")
    assert missing.is_name_error and missing.undefined_name == "price_of_item"
    # Read from the exception, not its message: a NameError the code raises with
    # Python's wording names nothing, and one that sets ``name`` names that.
    raised = await kernel.run_code("raise NameError(\"name 'decoy' is not defined\")")
    assert raised.is_name_error and raised.undefined_name is None
    named = await kernel.run_code("e = NameError('no wording here')\ne.name = 'budget'\nraise e")
    assert named.undefined_name == "budget"
    odd = await kernel.run_code("e = NameError('x')\ne.name = 42\nraise e")
    assert odd.is_name_error and odd.undefined_name is None
    other = await kernel.run_code("raise KeyError('price_of_item')")
    assert not other.is_name_error and other.undefined_name is None


async def test_host_functions_forward_args_and_results(kernel: Kernel) -> None:
    seen: list[tuple] = []

    def inspect(item_id: str, verbose: bool = False) -> str:
        seen.append((item_id, verbose))
        return '{"value": 3}'

    async def take_item(item_id: str) -> str:
        return f"took {item_id}"

    result = await kernel.run_code(
        "import json\nv = json.loads(inspect('item_000000000001', verbose=True))['value']\nprint(v, take_item('item_000000000002'))",
        {"inspect": inspect, "take_item": take_item},
    )
    assert result.error is None, result.error
    assert result.stdout == "3 took item_000000000002\n"
    assert seen == [("item_000000000001", True)]
    assert [(c.name, c.args, c.kwargs, c.result, c.error) for c in result.tool_calls] == [
        ("inspect", ["item_000000000001"], {"verbose": True}, '{"value": 3}', None),
        ("take_item", ["item_000000000002"], {}, "took item_000000000002", None),
    ]


async def test_tool_errors_are_catchable_tool_error(kernel: Kernel) -> None:
    def take_item(item_id: str) -> str:
        raise ValueError(f"item {item_id} already taken")

    result = await kernel.run_code(
        "try:\n    take_item('a')\nexcept ToolError as e:\n    print('caught', e, isinstance(e, Exception))\ntake_item('b')",
        {"take_item": take_item},
    )
    assert result.stdout == "caught item a already taken True\n"
    assert result.error is not None and result.error.type == "ToolError"
    assert result.error.message == "item b already taken"
    assert [c.error for c in result.tool_calls] == ["item a already taken", "item b already taken"]


async def test_non_json_arguments_fail_in_the_kernel(kernel: Kernel) -> None:
    result = await kernel.run_code("inspect(object())", {"inspect": lambda x: x})
    assert result.error is not None and result.error.type == "TypeError"
    assert result.tool_calls == []


async def test_tools_can_change_between_steps(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    await kernel.run_code("print(a())", {"a": lambda: 1})
    result = await kernel.run_code("print(b()); a()", {"b": lambda: 2})
    assert result.stdout == "2\n"
    assert result.error is not None and result.error.type == "NameError"


async def test_tool_stub_help_shows_host_docstring(kernel: Kernel) -> None:
    def inspect(item_id: str) -> str:
        """Reveal an item's class, value and weight."""
        return ""

    result = await kernel.run_code("print(inspect.__doc__)", {"inspect": inspect})
    assert "Reveal an item" in result.stdout
