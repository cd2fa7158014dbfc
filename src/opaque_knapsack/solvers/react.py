"""The ReAct baseline: a task family's tools through native function calling.

No interpreter is involved: the model calls the tools directly and reads each
result as a tool message. The tools are the ones the family of the sample's
episode declares (``TaskFamily.react_tools``), else its host functions, each
wrapped as an Inspect tool. The loop mirrors the CodeAct agent's (turn limit,
per-turn tool-call limit, finish ends the episode, a reply that did not end
normally is dropped, errors end it cleanly).
"""

from __future__ import annotations

import functools
import json

from inspect_ai.agent import Agent, AgentState, agent
from inspect_ai.model import (
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    execute_tools,
    get_model,
)
from inspect_ai.tool import Tool, ToolCallError, ToolDef, ToolError
from inspect_ai.util import store

from opaque_knapsack.limits import PAPER_LIMITS
from opaque_knapsack.records import AGENT_KEY, EPISODE_ERROR, FINISHED, REACT, TURN_LIMIT, EndReason
from opaque_knapsack.solvers.episode import Episode, HostFunction, live_episode
from opaque_knapsack.solvers.prompts import Prompts, load_prompts, react_system_prompt
from opaque_knapsack.solvers.turns import DROP, REACT_STOPS, CutOff, cut_off_mode, next_reply, open_conversation

NO_TOOL_CALL = (
    "No tool was called, so nothing happened. Call a tool to act, or call finish() when you are done."
)


@agent
def react(
    max_turns: int | None = None,
    max_tool_calls: int | None = None,
    prompts: str | Prompts | None = None,
    cut_off: CutOff = DROP,
) -> Agent:
    """ReAct baseline agent with the tools of the sample's task family (knapsack: list_items, inspect, take_item, finish).

    Args:
        max_turns: Assistant replies per episode (default: ``EpisodeLimits``).
        max_tool_calls: Tool calls allowed per reply; further calls in the same
            reply are refused with an error result (default: ``EpisodeLimits``).
        prompts: A prompts file (YAML or JSON) or a ``Prompts``: ReAct's system
            prompt template, tool docs and few-shot turns (under ``react``).
        cut_off: ``drop`` (the paper's loop): a reply whose stop reason is
            neither ``stop`` nor ``tool_calls`` is not run, not kept and not
            counted; the model is told and the turn is spent. ``run``: its
            tool calls run like any other reply's.
    """
    prompt_set = load_prompts(prompts)
    cut_off = cut_off_mode(cut_off)
    limits = PAPER_LIMITS.updated(max_turns=max_turns, max_tool_calls=max_tool_calls)

    async def execute(state: AgentState) -> AgentState:
        episode = live_episode()
        store().set(AGENT_KEY, REACT)
        if not any(isinstance(m, ChatMessageSystem) for m in state.messages):
            system = react_system_prompt(
                family=episode.family,
                values=episode.prompt_values(),
                max_tool_calls=limits.max_tool_calls,
                max_turns=limits.max_turns,
                prompts=prompt_set,
            )
            open_conversation(state, system, prompt_set.turns(REACT))
        tools = family_tools(episode)
        end_reason: EndReason = EPISODE_ERROR
        try:
            end_reason = await _run_turns(state, episode, tools, limits.max_turns, limits.max_tool_calls, cut_off)
        finally:
            episode.end(end_reason)
        return state

    return execute


def family_tools(episode: Episode) -> list[Tool]:
    """The episode's tools as Inspect tools: the ones its family declares, else its host functions wrapped."""
    family = episode.family
    if family.react_tools is not None:
        tools: list[Tool] = family.load(family.react_tools)()
        return tools
    return [host_function_tool(name, function) for name, function in episode.host_functions().items()]


def host_function_tool(name: str, function: HostFunction) -> Tool:
    """One host function as an Inspect tool: its signature and docstring (with ``Args:``) describe it to the model.

    What it returns reaches the model as text (JSON unless it is a string); an
    exception it raises is the call's error, with its message.
    """

    @functools.wraps(function)
    async def execute(*args: object, **kwargs: object) -> str:
        try:
            value = function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the tool's refusal is the model's to read
            raise ToolError(str(error)) from None
        return value if isinstance(value, str) else json.dumps(value)

    return ToolDef(execute, name=name).as_tool()


async def _run_turns(
    state: AgentState, episode: Episode, tools: list[Tool], max_turns: int, max_tool_calls: int, cut_off: CutOff
) -> EndReason:
    """The turn loop; returns why the episode ended."""
    model = get_model()
    end_reason: EndReason = TURN_LIMIT
    for turn in range(1, max_turns + 1):
        reply = await next_reply(
            model, state, turn, tools, normal_stops=REACT_STOPS, cut_off=cut_off, last_turn=turn == max_turns
        )
        episode.record(reply.record)
        if reply.end_reason is not None:
            end_reason = reply.end_reason
            break
        if reply.record.cut_off:
            continue  # the turn is spent; none of the reply's tool calls run
        output, record = reply.output, reply.record
        calls = output.message.tool_calls or []
        if not calls:
            if turn < max_turns:
                state.messages.append(ChatMessageUser(content=NO_TOOL_CALL))
            continue
        allowed, refused = calls[:max_tool_calls], calls[max_tool_calls:]
        output.message.tool_calls = allowed
        result = await execute_tools([*state.messages], tools)
        state.messages.extend(result.messages)
        for call in refused:
            state.messages.append(
                ChatMessageTool(
                    content="",
                    tool_call_id=call.id,
                    function=call.function,
                    error=ToolCallError(
                        "limit", f"More than {max_tool_calls} tool calls in one reply; this call was not run."
                    ),
                )
            )
        output.message.tool_calls = calls
        record.tool_calls = len(allowed)
        if episode.finished:
            end_reason = FINISHED
            break
    return end_reason
