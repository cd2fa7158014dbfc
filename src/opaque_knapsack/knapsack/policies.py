"""Scripted CodeAct policies that stand in for trained students offline.

Both policies play the same strategy -- list the items, inspect as many as the
budget allows, then take an exact best subset of the inspected items, learning
which classes are forbidden from refused takes -- and differ only in where
they keep their working state:

- ``persistent`` binds its state to interpreter variables once and reuses them
  (and a planning function it defined) in later blocks, as a model trained on
  persistent-runtime traces does;
- ``stateless`` re-enters its whole state as a literal at the top of every
  block and prints it again at the end, as a model trained on stateless traces
  does.

They are honest: every decision is read off the conversation they are given
(the task statement, their own status lines in the observations, the errors),
never off the hidden environment. So in the mismatched runtime the failure
modes happen for real: the persistent policy's carried names raise NameError
in a stateless runtime (it then falls back to re-deriving its state from the
conversation), and the stateless policy pays for re-entering its state in
tokens whatever the runtime.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
from inspect_ai.tool import ToolCall

from opaque_knapsack.limits import PAPER_LIMITS
from opaque_knapsack.records import SEMANTICS, Runtime

Style = Runtime

STATUS_LINE = re.compile(r"^STATUS (\{.*\})\s*$", re.MULTILINE)
STATE_LINE = re.compile(r"^STATE (\{.*\})\s*$", re.MULTILINE)
CODE_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL)

# Planning helpers as the policies write them into their code blocks: an exact
# sparse 0/1 knapsack over the inspected items, and a take loop that learns the
# forbidden classes from refusals and re-plans.
PLANNER_SOURCE = '''\
def best_subset(candidates, room):
    best = {0: (0, ())}
    for item_id, weight, value in candidates:
        for used, (total, chosen) in list(best.items()):
            new_used = used + weight
            if new_used <= room and (new_used not in best or best[new_used][0] < total + value):
                best[new_used] = (total + value, chosen + (item_id,))
    return list(max(best.values())[1])

def take_plan(info, forbidden, taken, capacity):
    skipped = set()
    while True:
        room = capacity - sum(info[i]["weight"] for i in taken)
        candidates = sorted(
            (i, d["weight"], d["value"]) for i, d in info.items()
            if i not in taken and i not in skipped and d["class"] not in forbidden and d["weight"] <= room
        )
        plan = best_subset(candidates, room)
        if not plan:
            return True
        plan.sort(key=lambda i: info[i]["value"] / info[i]["weight"], reverse=True)
        replan = False
        for item_id in plan:
            try:
                take_item(item_id)
            except ToolError as error:
                if type(error).__name__ == "ToolCallLimitError":
                    return False
                if "not allowed" in str(error):
                    forbidden.append(info[item_id]["class"])
                else:
                    print("take refused:", item_id, error)
                    skipped.add(item_id)
                replan = True
                break
            taken.append(item_id)
        if not replan:
            return True
'''


@dataclass
class TaskFacts:
    """What the task statement and system prompt say, parsed like a model would read them."""

    n_items: int = 0
    capacity: int = 0
    budget: int = 0
    max_tool_calls: int = PAPER_LIMITS.max_tool_calls
    max_turns: int = PAPER_LIMITS.max_turns


@dataclass
class Conversation:
    """The parts of the conversation a policy decides from."""

    facts: TaskFacts
    turns_taken: int  # assistant replies so far
    observations: list[str] = field(default_factory=list)  # user messages after the task statement
    assistant_texts: list[str] = field(default_factory=list)

    @property
    def turns_left(self) -> int:
        return self.facts.max_turns - self.turns_taken

    @property
    def last_observation(self) -> str:
        return self.observations[-1] if self.observations else ""

    def saw_name_error(self) -> bool:
        return any("NameError" in text for text in self.observations)

    def last_json_line(self, pattern: re.Pattern[str]) -> dict[str, Any] | None:
        for text in reversed(self.observations):
            matches = pattern.findall(text)
            if matches:
                try:
                    return json.loads(matches[-1])
                except json.JSONDecodeError:
                    continue
        return None


def _number(pattern: str, text: str, default: int) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else default


def read_facts(system: str, task: str) -> TaskFacts:
    return TaskFacts(
        n_items=_number(r"Number of items:\s*(\d+)", task, 0),
        capacity=_number(r"Capacity:\s*(\d+)", task, 0),
        budget=_number(r"Inspect budget:\s*(\d+)", task, 0),
        max_tool_calls=_number(r"At most\s+(\d+)\s+tool calls", system, PAPER_LIMITS.max_tool_calls),
        max_turns=_number(r"you have\s+(\d+)\s+replies", system, PAPER_LIMITS.max_turns),
    )


def _literal(value: Any) -> str:
    """The Python literal a model would copy back from a printed state."""
    return repr(value)


@dataclass
class Reply:
    text: str

    @classmethod
    def code(cls, prose: str, code: str) -> Reply:
        """What every step of a CodeAct policy says: a line of intent, then one Python block."""
        return cls(f"{prose}\n```python\n{code}```")


class CodeActPolicy:
    """Decides the next reply of a scripted CodeAct policy from the conversation."""

    def __init__(self, style: Style) -> None:
        self.style = style
        self.keeps_state = SEMANTICS[style].persists_state
        """Trained where state persists: keeps its state in variables."""

    def reply(self, conversation: Conversation) -> Reply:
        if conversation.turns_left <= 0:
            return Reply("I have no replies left.")
        # A persistent-trained policy keeps its state in variables until the
        # runtime shows it that state does not survive; then it re-derives it.
        if self.keeps_state and not conversation.saw_name_error():
            return self._persistent(conversation)
        return self._stateless(conversation)

    # -- persistent style -------------------------------------------------
    def _persistent(self, conversation: Conversation) -> Reply:
        facts = conversation.facts
        status = conversation.last_json_line(STATUS_LINE)
        restarted = "restarted" in conversation.last_observation
        if status is None or restarted:
            return Reply.code(
                "Let me list the items and set up variables that I will reuse in later steps.",
                "import json\n"
                "items = json.loads(list_items())\n"
                "info = {}\n"
                "forbidden = []\n"
                "taken = []\n"
                f"budget = {facts.budget}\n"
                f"capacity = {facts.capacity}\n"
                "exhausted = False\n"
                'print(f"{len(items)} items, budget {budget}, capacity {capacity}")\n'
                'print("STATUS " + json.dumps({"items": len(items), "inspected": 0, "budget_left": budget}))\n'
            )
        batch = _inspect_batch(status, conversation)
        if batch is not None:
            return Reply.code(
                f"I'll inspect up to {batch} more items, keeping the results in `info`.",
                f"batch = [i for i in items if i not in info][:{batch}]\n"
                + _inspect_loop("exhausted")
                + 'print(f"inspected {len(info)} of {len(items)}")\n'
                'print("STATUS " + json.dumps({"items": len(items), "inspected": len(info), '
                '"budget_left": budget - len(info), "exhausted": exhausted}))\n'
            )
        define = "" if _defined_planner(conversation) else PLANNER_SOURCE + "\n"
        return Reply.code(
            "Now I take an exact best subset of the inspected items, re-planning when a class is refused.",
            f"{define}"
            "done = take_plan(info, forbidden, taken, capacity)\n"
            'value = sum(info[i]["value"] for i in taken)\n'
            'print(f"taken {len(taken)} items, value {value}, forbidden classes {sorted(set(forbidden))}")\n'
            'print("STATUS " + json.dumps({"items": len(items), "inspected": len(info), '
            '"budget_left": budget - len(info), "exhausted": True, "done": done}))\n'
            "if done:\n"
            "    finish()\n"
        )

    # -- stateless style --------------------------------------------------
    def _stateless(self, conversation: Conversation) -> Reply:
        facts = conversation.facts
        state = conversation.last_json_line(STATE_LINE)
        if state is None:
            return Reply.code(
                "Each step starts from scratch, so I print everything I learn as a STATE line.",
                "import json\n"
                "items = json.loads(list_items())\n"
                'state = {"items": items, "info": {}, "forbidden": [], "taken": [], "exhausted": False}\n'
                'print("STATE " + json.dumps(state, separators=(",", ":")))\n'
            )
        status = {
            "items": len(state["items"]),
            "inspected": len(state["info"]),
            "budget_left": facts.budget - len(state["info"]),
            "exhausted": state.get("exhausted", False),
            "done": state.get("done", False),
        }
        header = f"import json\nstate = {_literal(state)}\n"
        footer = 'print("STATE " + json.dumps(state, separators=(",", ":")))\n'
        batch = _inspect_batch(status, conversation)
        if batch is not None:
            return Reply.code(
                f"Re-entering my state from the last observation, I inspect up to {batch} more items.",
                f"{header}"
                'info = state["info"]\n'
                f'batch = [i for i in state["items"] if i not in info][:{batch}]\n'
                + _inspect_loop('state["exhausted"]')
                + f"{footer}"
            )
        return Reply.code(
            "Re-entering my state, I take an exact best subset of the inspected items.",
            f"{header}"
            f"{PLANNER_SOURCE}\n"
            f'state["done"] = take_plan(state["info"], state["forbidden"], state["taken"], {facts.capacity})\n'
            'value = sum(state["info"][i]["value"] for i in state["taken"])\n'
            'print(f"taken {len(state[\'taken\'])} items, value {value}")\n'
            f"{footer}"
            'if state["done"]:\n'
            "    finish()\n"
        )


def _inspect_loop(exhausted_flag: str) -> str:
    """The block both policies write to inspect a batch, stopping when refused."""
    return (
        "for item_id in batch:\n"
        "    try:\n"
        "        info[item_id] = json.loads(inspect(item_id))\n"
        "    except ToolError as error:\n"
        '        print("inspect refused:", error)\n'
        f"        {exhausted_flag} = True\n"
        "        break\n"
    )


def _inspect_batch(status: dict[str, Any], conversation: Conversation) -> int | None:
    """How many items the next step inspects; None when it is time to take."""
    if _next_phase(status, conversation) != "inspect":
        return None
    return min(conversation.facts.max_tool_calls, status["budget_left"])


def _next_phase(status: dict[str, Any], conversation: Conversation) -> Literal["inspect", "take"]:
    can_inspect = (
        status.get("inspected", 0) < status.get("items", 0)
        and status.get("budget_left", 0) > 0
        and not status.get("exhausted", False)
    )
    # keep the last two replies for taking and finishing
    if can_inspect and conversation.turns_left > 2:
        return "inspect"
    return "take"


def _defined_planner(conversation: Conversation) -> bool:
    """Whether an earlier block defined the planner since the interpreter last restarted."""
    since_restart = 0
    for index, observation in enumerate(conversation.observations):
        if "restarted" in observation:
            since_restart = index + 1
    return any("def take_plan" in text for text in conversation.assistant_texts[since_restart:])


# -- ReAct (native tool calling) --------------------------------------------


@dataclass
class ToolCallPlan:
    function: str
    arguments: dict[str, Any]


# The planner the CodeAct policies write into their code blocks, loaded here too:
# ReAct plans with the very same code, so the two agents cannot drift apart.
_PLANNER: dict[str, Any] = {}
exec(PLANNER_SOURCE, _PLANNER)


def best_subset(candidates: Sequence[tuple[str, int, int]], room: int) -> list[str]:
    """The exact 0/1 knapsack the policies run, in the policy process (ReAct)."""
    return _PLANNER["best_subset"](candidates, room)


@dataclass
class ReactMemory:
    """What a ReAct policy has learned from the tool results in the conversation."""

    items: list[str] | None = None
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    taken: list[str] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)  # refused for a reason other than class
    exhausted: bool = False


def react_next_calls(memory: ReactMemory, facts: TaskFacts, max_calls: int = 10) -> list[ToolCallPlan]:
    """The tool calls of the next reply of the scripted ReAct policy."""
    if memory.items is None:
        return [ToolCallPlan("list_items", {})]
    budget_left = facts.budget - len(memory.info)
    uninspected = [i for i in memory.items if i not in memory.info]
    if uninspected and budget_left > 0 and not memory.exhausted:
        return [ToolCallPlan("inspect", {"item_id": i}) for i in uninspected[: min(max_calls, budget_left)]]
    room = facts.capacity - sum(memory.info[i]["weight"] for i in memory.taken)
    candidates = sorted(
        (i, d["weight"], d["value"])
        for i, d in memory.info.items()
        if i not in memory.taken
        and i not in memory.skipped
        and d["class"] not in memory.forbidden
        and d["weight"] <= room
    )
    plan = best_subset(candidates, room)
    if not plan:
        return [ToolCallPlan("finish", {})]
    plan.sort(key=lambda i: memory.info[i]["value"] / memory.info[i]["weight"], reverse=True)
    return [ToolCallPlan("take_item", {"item_id": plan[0]})]


# -- reading Inspect's messages, as the scripted provider hands them over ---------------------


def _facts(input: list[ChatMessage]) -> TaskFacts:
    system = "\n".join(m.text for m in input if isinstance(m, ChatMessageSystem))
    task = next((m.text for m in input if isinstance(m, ChatMessageUser)), "")
    return read_facts(system, task)


def _conversation(input: list[ChatMessage]) -> Conversation:
    users = [m.text for m in input if isinstance(m, ChatMessageUser)]
    return Conversation(
        facts=_facts(input),
        turns_taken=sum(isinstance(m, ChatMessageAssistant) for m in input),
        observations=users[1:],
        assistant_texts=[m.text for m in input if isinstance(m, ChatMessageAssistant)],
    )


def _react_memory(input: list[ChatMessage]) -> ReactMemory:
    """Replays the tool results in the conversation into what the policy knows."""
    memory = ReactMemory()
    calls: dict[str, ToolCall] = {}
    for message in input:
        if isinstance(message, ChatMessageAssistant):
            calls.update({call.id: call for call in message.tool_calls or []})
        elif isinstance(message, ChatMessageTool):
            call = calls.get(message.tool_call_id or "")
            if call is None:
                continue
            item_id = call.arguments.get("item_id")
            if message.error is not None:
                text = message.error.message
                if call.function == "inspect":
                    memory.exhausted = True
                elif call.function == "take_item" and "not allowed" in text and item_id in memory.info:
                    memory.forbidden.add(memory.info[item_id]["class"])
                elif call.function == "take_item":
                    memory.skipped.add(item_id)
                continue
            if call.function == "list_items":
                memory.items = json.loads(message.text)
            elif call.function == "inspect":
                memory.info[item_id] = json.loads(message.text)
            elif call.function == "take_item":
                memory.taken.append(item_id)
    return memory


class KnapsackPolicies:
    """The knapsack family's ``ScriptedPolicies``: what ``scripted/<style>`` answers in a knapsack sample."""

    def codeact_reply(self, style: str, messages: Sequence[ChatMessage]) -> str:
        return CodeActPolicy(style).reply(_conversation(list(messages))).text  # type: ignore[arg-type]

    def react_calls(self, style: str, messages: Sequence[ChatMessage]) -> list[tuple[str, dict[str, Any]]]:
        facts = _facts(list(messages))
        calls = react_next_calls(_react_memory(list(messages)), facts, max_calls=min(10, facts.max_tool_calls))
        return [(call.function, call.arguments) for call in calls]


POLICIES = KnapsackPolicies()
