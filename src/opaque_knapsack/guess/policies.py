"""Scripted policies for the guess family: what ``scripted/persistent`` and ``scripted/stateless`` answer.

Both bisect, three guesses a step, and differ as the knapsack policies do in
where they keep what they learnt: ``persistent`` binds its bounds and a
``bisect`` helper in the interpreter once and calls it again in later steps;
``stateless`` enters its bounds as literals at the top of every block and
prints them at the end. Like every scripted policy they read only the
conversation: the range from the task statement, their own STATE lines and
the errors in the observations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageTool, ChatMessageUser

from opaque_knapsack.records import semantics_of

GUESSES_PER_STEP = 3
RANGE = re.compile(r"from (-?\d+) to (-?\d+)")
STATE_LINE = re.compile(r"^STATE (\{.*\})\s*$", re.MULTILINE)

BISECT_SOURCE = '''\
def bisect(steps):
    global low, high, answer
    for _ in range(steps):
        n = (low + high) // 2
        verdict = guess(n)
        if verdict == "correct":
            answer = n
            return
        if verdict == "higher":
            low = n + 1
        else:
            high = n - 1
'''
REPORT = 'print("STATE " + json.dumps({"low": low, "high": high, "answer": answer}))\nif answer is not None:\n    finish()\n'


def _bounds(messages: Sequence[ChatMessage]) -> dict[str, Any]:
    """What the policy knows: its last printed STATE line, else the task statement's range."""
    users = [message.text for message in messages if isinstance(message, ChatMessageUser)]
    for text in reversed(users[1:]):
        found = STATE_LINE.findall(text)
        if found:
            state: dict[str, Any] = json.loads(found[-1])
            return state
    match = RANGE.search(users[0] if users else "")
    low, high = (int(match[1]), int(match[2])) if match else (1, 100)
    return {"low": low, "high": high, "answer": None}


def _code(prose: str, code: str) -> str:
    return f"{prose}\n```python\n{code}```"


class GuessPolicies:
    """The guess family's ``ScriptedPolicies``."""

    def codeact_reply(self, style: str, messages: Sequence[ChatMessage]) -> str:
        observations = [m.text for m in messages if isinstance(m, ChatMessageUser)][1:]
        replies = [m.text for m in messages if isinstance(m, ChatMessageAssistant)]
        semantics = semantics_of(style)
        keeps_state = semantics is not None and semantics.persists_state
        if keeps_state and not any("NameError" in text for text in observations):
            if any("def bisect" in text for text in replies):
                return _code("I continue the bisection with the bounds I kept.", f"bisect({GUESSES_PER_STEP})\n" + REPORT)
            state = _bounds(messages)
            setup = f"import json\nlow, high, answer = {state['low']}, {state['high']}, None\n\n{BISECT_SOURCE}\n"
            return _code("I keep the bounds in variables and bisect.", setup + f"bisect({GUESSES_PER_STEP})\n" + REPORT)
        state = _bounds(messages)
        return _code(
            "Each step starts afresh, so I enter the bounds from my last STATE line and bisect.",
            f"import json\nlow, high, answer = {state['low']}, {state['high']}, {state['answer']!r}\n"
            f"for _ in range({GUESSES_PER_STEP}):\n"
            "    n = (low + high) // 2\n"
            "    verdict = guess(n)\n"
            '    if verdict == "correct":\n'
            "        answer = n\n"
            "        break\n"
            '    if verdict == "higher":\n'
            "        low = n + 1\n"
            "    else:\n"
            "        high = n - 1\n" + REPORT,
        )

    def react_calls(self, style: str, messages: Sequence[ChatMessage]) -> list[tuple[str, dict[str, Any]]]:
        state = _bounds(messages[:2])
        low, high = state["low"], state["high"]
        guesses = {call.id: call.arguments.get("n") for m in messages if isinstance(m, ChatMessageAssistant)
                   for call in m.tool_calls or []}  # fmt: skip
        for message in messages:
            if not isinstance(message, ChatMessageTool) or message.error is not None:
                continue
            n = guesses.get(message.tool_call_id or "")
            if n is None:
                continue
            if message.text == "correct":
                return [("finish", {})]
            low, high = (n + 1, high) if message.text == "higher" else (low, n - 1)
        return [("guess", {"n": (low + high) // 2})]


POLICIES = GuessPolicies()
