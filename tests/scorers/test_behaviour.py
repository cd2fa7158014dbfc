"""Behaviour metrics on hand-made code sequences with known answers."""

import pytest

from opaque_knapsack.scorers.behaviour import (
    StepCode,
    ast_tool_call_sites,
    behaviour_metrics,
    block_names,
    tool_call_sites,
)

TOOLS = ("list_items", "inspect", "take_item", "finish")


def test_block_reads_before_binding_in_order():
    names = block_names("x = y + 1\nprint(x, z)\nfor i in items:\n    total += i\n")
    assert names.reads == ("y", "print", "z", "items", "total")
    assert names.binds == {"x", "i", "total"}


def test_read_after_bind_in_same_block_is_not_a_read():
    assert "data" not in block_names("data = [1]\nprint(data)").reads


def test_augmented_assignment_reads_its_target():
    assert block_names("count += 1").reads == ("count",)


def test_function_bodies_and_comprehensions_expose_free_names_only():
    code = (
        "def plan(room):\n"
        "    best = {}\n"
        "    for i in info:\n"
        "        best[i] = room\n"
        "    return best\n"
        "ids = [k for k in info if k not in taken]\n"
        "f = lambda v: v * scale\n"
    )
    names = block_names(code)
    assert set(names.reads) == {"info", "taken", "scale"}
    assert {"plan", "ids", "f"} <= names.binds
    assert "best" not in names.binds and "room" not in names.reads


def test_imports_bind_top_level_names_and_record_modules():
    names = block_names("import os.path\nimport numpy as np\nfrom json import loads as L\n")
    assert names.imports == {"os", "numpy", "json"}
    assert names.binds == {"os", "np", "L"}


def test_syntax_error_block_has_no_names():
    assert not block_names("def (").parsed


def test_carried_references_state_utilization_and_lifespan():
    steps = [
        StepCode(1, "import json\nitems = json.loads(list_items())\ninfo = {}", frozenset()),
        StepCode(2, "for i in items[:3]:\n    info[i] = json.loads(inspect(i))", frozenset({"items", "json", "info"})),
        StepCode(3, "print(len(info))", frozenset({"items", "json", "info", "i"})),
        StepCode(5, "take_item(best)", frozenset({"items", "json", "info", "i"})),
    ]
    metrics = behaviour_metrics(steps, TOOLS)
    # turn 2 reads items, then json (the right-hand side runs first), then info;
    # a subscript store binds nothing, so turn 3's info still dates from turn 1
    assert [(t, n) for t, n, _ in metrics.carried] == [(2, "items"), (2, "json"), (2, "info"), (3, "info")]
    assert metrics.carried_references == 4
    assert metrics.state_utilization == 4  # `best` was never bound: not carried at all
    assert metrics.symbol_lifespan == (1 + 1 + 1 + 2) / 4
    assert metrics.reimport_rate == 0.0


def test_a_carried_name_is_served_only_if_bound_at_step_start():
    steps = [StepCode(1, "x = 1", frozenset()), StepCode(2, "print(x)", frozenset())]
    metrics = behaviour_metrics(steps, TOOLS)
    assert metrics.carried_references == 1
    assert metrics.state_utilization == 0
    assert metrics.symbol_lifespan == 1.0


def test_served_does_not_depend_on_error_text():
    """A fresh interpreter serves none of several carried names, whichever one the NameError names."""
    steps = [
        StepCode(1, "a = 1\nb = 2\nc = 3", frozenset()),
        StepCode(2, "print(a)\nprint(b)\nprint(c)", frozenset()),  # fails on a; b and c unserved too
    ]
    assert behaviour_metrics(steps, TOOLS).carried_references == 3
    assert behaviour_metrics(steps, TOOLS).state_utilization == 0
    some = [steps[0], StepCode(2, "print(a)\nprint(b)\nprint(c)", frozenset({"b"}))]
    assert behaviour_metrics(some, TOOLS).state_utilization == 1
    unknown = [steps[0], StepCode(2, "print(a)")]
    assert behaviour_metrics(unknown, TOOLS).state_utilization == 0


# (code, the paper's text count, the ast count): the paper's rule is a tool name, as a whole
# word, then optional whitespace and "(", anywhere in the text.
CALL_SITE_CASES = {
    "plain call": ("inspect('a')", 1, 1),
    "spaces before the parenthesis": ("inspect  ('a')", 1, 1),
    "call in a loop counts once": ("for i in ids:\n    inspect(i)", 1, 1),
    "two tools, two sites": ("take_item(i)\nfinish()", 2, 2),
    "nested calls": ("json.loads(inspect(json.loads(list_items())[0]))", 2, 2),
    "method call": ("env.inspect('a')", 1, 0),
    "inside a string": ("print(\"call inspect('a') first\")", 1, 0),
    "inside a comment": ("# take_item(x) after inspecting\nx = 1", 1, 0),
    "inside a docstring": ('def f():\n    """Calls finish() at the end."""\n    return 1', 1, 0),
    "a def line": ("def finish():\n    return 0", 1, 0),
    "a call split across lines": ("finish\n()", 1, 0),  # two statements to Python
    "code that does not parse": ("inspect('a'\nfinish(", 2, 0),
    "a longer name is another name": ("my_inspect('a')\ninspector('b')", 0, 0),
    "a name without a call": ("f = inspect\nprint(inspect.__doc__)", 0, 0),
    "a tool passed, then called through another name": ("g = take_item\ng('a')", 0, 0),
    "not a tool": ("print(len('abc'))", 0, 0),
}


@pytest.mark.parametrize("case", list(CALL_SITE_CASES), ids=list(CALL_SITE_CASES))
def test_tool_call_sites_follow_the_papers_text_rule_and_ast_counts_calls(case: str):
    code, paper, parsed = CALL_SITE_CASES[case]
    assert tool_call_sites(code, frozenset(TOOLS)) == paper
    assert ast_tool_call_sites(code, frozenset(TOOLS)) == parsed


def test_call_sites_without_tools_are_zero():
    assert tool_call_sites("inspect('a')", frozenset()) == 0


def test_both_call_site_figures_reach_the_score():
    from opaque_knapsack.scorers import step_figures

    steps = [
        {"turn": 1, "code": "# inspect(a)\nenv.inspect('a')\ninspect('b')"},
        {"turn": 2, "code": None},
        {"turn": 3, "code": "finish\n("},
    ]
    figures = step_figures(steps, TOOLS)
    assert (figures["tool_call_sites"], figures["ast_tool_call_sites"]) == (4, 1)


def test_reimport_rate_counts_steps_after_the_first():
    steps = [
        StepCode(1, "import json"),
        StepCode(2, "import json\nx = 1"),
        StepCode(3, "from json import dumps"),
        StepCode(4, "import re"),
        StepCode(5, "print(1)"),
    ]
    assert behaviour_metrics(steps, TOOLS).reimport_rate == 2 / 4


def test_builtins_and_tools_are_never_carried():
    steps = [StepCode(1, "print = 3\ninspect = 2"), StepCode(2, "print(inspect('a'))")]
    assert behaviour_metrics(steps, TOOLS).carried_references == 0


def test_lifespan_uses_the_most_recent_binding():
    steps = [StepCode(1, "s = 1"), StepCode(4, "s = 2"), StepCode(9, "print(s)")]
    assert behaviour_metrics(steps, TOOLS).symbol_lifespan == 5.0


def test_empty_episode_has_zero_metrics():
    metrics = behaviour_metrics([], TOOLS)
    assert (metrics.carried_references, metrics.reimport_rate, metrics.symbol_lifespan) == (0, 0.0, 0.0)


def test_exception_names_inside_functions_are_local():
    code = "def f():\n    try:\n        g()\n    except ValueError as error:\n        print(error)\n"
    assert set(block_names(code).reads) == {"g", "ValueError", "print"}


def test_scorer_reports_exactly_the_contract_keys():
    from opaque_knapsack.knapsack import PRESETS, KnapsackEnvironment, generate_instance
    from opaque_knapsack.knapsack.scorer import episode_figures
    from opaque_knapsack.records import SCORE_KEYS

    instance = generate_instance(PRESETS["easy"], 3, 3)
    environment = KnapsackEnvironment(instance)
    first = instance.public.item_ids[0]
    environment.inspect(first)
    environment.take_item(first)
    steps = [
        {"turn": 1, "code": "x = 1\nfor i in range(2): inspect(i)", "tool_calls": 2, "input_tokens": 10,
         "output_tokens": 4, "total_tokens": 14, "bound_at_start": [], "timed_out": True},
        {"turn": 2, "code": None, "input_tokens": 20, "cached_input_tokens": 15, "output_tokens": 1,
         "reasoning_tokens": 3, "total_tokens": 24},
        {"turn": 3, "code": "print(x)", "tool_calls": 0, "is_name_error": True, "bound_at_start": [],
         "input_tokens": 30, "output_tokens": 2, "total_tokens": 32, "timed_out": True, "kernel_restarted": True},
    ]
    figures = episode_figures(instance, environment.to_state(), steps)
    assert tuple(figures) == SCORE_KEYS
    item = instance.private.items[first]
    assert figures["optimality"] == item.value / instance.reference.optimal_value
    assert figures["capacity_utilization"] == item.weight / instance.public.capacity
    assert (figures["steps"], figures["tool_calls"], figures["items_inspected"]) == (3, 2, 1)
    assert figures["tool_call_sites"] == figures["ast_tool_call_sites"] == 1  # one site in a loop, two calls
    assert (figures["input_tokens"], figures["output_tokens"], figures["total_tokens"]) == (60, 7, 70)
    assert (figures["cached_input_tokens"], figures["reasoning_tokens"]) == (15, 3)
    assert (figures["name_error_episode"], figures["name_error_count"]) == (1, 1)
    assert (figures["step_timeouts"], figures["kernel_restarts"]) == (2, 1)
    assert (figures["state_utilization"], figures["symbol_lifespan"]) == (0, 2)


def test_prebound_modules_are_never_carried_references():
    """json is bound by the runtime at every step, like a builtin: reading it relies on no earlier step."""
    from opaque_knapsack.knapsack import PRESETS, KnapsackEnvironment, generate_instance
    from opaque_knapsack.knapsack.scorer import episode_figures

    instance = generate_instance(PRESETS["easy"], 3, 3)
    steps = [
        {"turn": 1, "code": "import json", "bound_at_start": []},
        {"turn": 2, "code": "ids = [1, 2]", "bound_at_start": []},
        {"turn": 3, "code": "print(json.dumps(ids))", "bound_at_start": ["ids"]},
    ]
    state = KnapsackEnvironment(instance).to_state()
    plain = episode_figures(instance, state, steps)
    assert (plain["state_utilization"], plain["symbol_lifespan"]) == (1, 1.5)  # json carried 2 turns, unserved
    prebound = episode_figures(instance, state, steps, prebound=["json"])
    assert (prebound["state_utilization"], prebound["symbol_lifespan"]) == (1, 1.0)  # only ids is carried
    steps.append({"turn": 4, "code": "import json\nprint(json.dumps(ids))", "bound_at_start": ["ids"]})
    assert episode_figures(instance, state, steps, prebound=["json"])["reimport_rate"] == 1 / 3
