"""The scripted policies read the conversation like a model would."""

import ast

from opaque_knapsack.knapsack import prompts as knapsack_prompts
from opaque_knapsack.knapsack.family import KNAPSACK
from opaque_knapsack.knapsack.policies import (
    CodeActPolicy,
    Conversation,
    ReactMemory,
    TaskFacts,
    best_subset,
    react_next_calls,
    read_facts,
)
from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.solvers import prompts
from opaque_knapsack.solvers.codeact import extract_code_blocks

FACTS = TaskFacts(n_items=3, capacity=10, budget=2, max_tool_calls=25, max_turns=40)


def conversation(*observations: str, turns: int | None = None) -> Conversation:
    return Conversation(
        FACTS, turns_taken=len(observations) if turns is None else turns, observations=list(observations),
        assistant_texts=["..."] * len(observations),
    )


def code_of(reply) -> str:
    [code] = extract_code_blocks(reply.text)
    ast.parse(code)  # every block the policies write is valid Python
    return code


def test_facts_are_read_from_the_prompts():
    system = prompts.codeact_system_prompt(SEMANTICS["stateless"], family=KNAPSACK, max_tool_calls=7, max_turns=12)
    task = knapsack_prompts.task_statement(n_items=30, capacity=55, inspect_budget=21, class_names=["A", "B"])
    assert read_facts(system, task) == TaskFacts(n_items=30, capacity=55, budget=21, max_tool_calls=7, max_turns=12)


def test_persistent_policy_reuses_variables_after_setup():
    policy = CodeActPolicy("persistent")
    setup = code_of(policy.reply(conversation()))
    assert "items = json.loads(list_items())" in setup
    status = 'STATUS {"items": 3, "inspected": 0, "budget_left": 2}'
    step = code_of(policy.reply(conversation(f"Observation:\n{status}")))
    assert "items" in step and "import" not in step and "[:2]" in step  # batch limited by the budget


def test_persistent_policy_falls_back_to_rederiving_state_after_a_name_error():
    policy = CodeActPolicy("persistent")
    observation = "Observation:\n(no output)\nNameError: name 'items' is not defined"
    code = code_of(policy.reply(conversation('Observation:\nSTATUS {"items": 3, "inspected": 0, "budget_left": 2}', observation)))
    assert "STATE" in code and "list_items()" in code


def test_stateless_policy_reenters_its_state_as_a_literal():
    policy = CodeActPolicy("stateless")
    state = {"items": ["a", "b", "c"], "info": {"a": {"class": "A", "value": 5, "weight": 3}},
             "forbidden": [], "taken": [], "exhausted": False}
    import json

    code = code_of(policy.reply(conversation("Observation:\nSTATE " + json.dumps(state))))
    assert f"state = {state!r}" in code
    assert code.startswith("import json")


def test_take_phase_when_budget_is_spent():
    policy = CodeActPolicy("persistent")
    status = 'STATUS {"items": 3, "inspected": 2, "budget_left": 0}'
    code = code_of(policy.reply(conversation(f"Observation:\n{status}")))
    assert "def take_plan" in code and "finish()" in code


def test_best_subset_is_exact():
    candidates = [("a", 5, 10), ("b", 4, 40), ("c", 6, 30), ("d", 3, 50)]
    assert sorted(best_subset(candidates, 10)) == ["b", "d"]  # 90 beats any other fit
    assert best_subset(candidates, 2) == []


def test_react_policy_lists_inspects_then_takes_and_finishes():
    memory = ReactMemory()
    assert [c.function for c in react_next_calls(memory, FACTS)] == ["list_items"]
    memory.items = ["a", "b", "c"]
    assert [c.arguments["item_id"] for c in react_next_calls(memory, FACTS)] == ["a", "b"]
    memory.info = {"a": {"class": "A", "value": 5, "weight": 3}, "b": {"class": "B", "value": 9, "weight": 4}}
    memory.exhausted = True
    assert react_next_calls(memory, FACTS)[0].arguments == {"item_id": "b"}
    memory.forbidden.add("B")
    assert react_next_calls(memory, FACTS)[0].arguments == {"item_id": "a"}
    memory.taken.append("a")
    assert react_next_calls(memory, FACTS)[0].function == "finish"


def test_the_two_by_two_failure_modes_happen_for_real(tmp_path):
    """scripted/persistent hits NameError in the stateless runtime; scripted/stateless
    pays clearly more tokens than scripted/persistent in the persistent runtime."""
    from inspect_ai import eval as inspect_eval

    from opaque_knapsack.knapsack import knapsack

    means = {}
    for train in ("persistent", "stateless"):
        for runtime in ("persistent", "stateless"):
            [log] = inspect_eval(
                knapsack(num=3, runtime=runtime), model=f"scripted/{train}", log_dir=str(tmp_path)
            )
            assert log.status == "success", log.error
            values = [sample.scores["knapsack_scorer"].value for sample in log.samples]
            means[train, runtime] = {key: sum(v[key] for v in values) / len(values) for key in values[0]}
    assert means["persistent", "stateless"]["name_error_episode"] == 1.0
    for condition in (("persistent", "persistent"), ("stateless", "persistent"), ("stateless", "stateless")):
        assert means[condition]["name_error_episode"] == 0.0
    assert means["stateless", "persistent"]["total_tokens"] > 1.3 * means["persistent", "persistent"]["total_tokens"]
    assert means["persistent", "persistent"]["state_utilization"] > 0
    # a fresh interpreter serves no carried name, however many NameErrors it raised
    assert means["persistent", "stateless"]["state_utilization"] == 0
    assert means["stateless", "stateless"]["state_utilization"] == 0
    for condition in means.values():
        assert condition["tool_call_sites"] > 0
    assert means["stateless", "stateless"]["reimport_rate"] == 1.0
    # the same strategy underneath: recovering from the NameErrors costs turns, not quality
    assert means["persistent", "stateless"]["optimality"] == means["persistent", "persistent"]["optimality"]
