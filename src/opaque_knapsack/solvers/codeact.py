"""The CodeAct agent: the model writes one Python block per turn.

Each turn the model sees the whole conversation so far; its reply is appended;
at most one fenced Python block from it runs in the sample's runtime; the
observation is appended as a user message. A reply that did not end normally
(cut off by the token limit, stopped by a content filter) is, as in the
paper's loop, never appended: a short note asks the model to continue. Nothing
is ever removed or hidden, so every prompt the model saw is a prefix of the
final ``state.messages``, and one episode exports as exactly one training
conversation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from inspect_ai.agent import Agent, AgentState, agent
from inspect_ai.log import transcript
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, get_model
from inspect_ai.util import store

from opaque_knapsack.limits import EpisodeLimits
from opaque_knapsack.records import (
    AGENT_KEY,
    CODEACT,
    EPISODE_ERROR,
    FINISHED,
    PREBOUND_KEY,
    RUNTIME_KEY,
    TURN_LIMIT,
    EndReason,
    RuntimeSemantics,
    StepRecord,
)
from opaque_knapsack.solvers import prompts
from opaque_knapsack.solvers.episode import Episode, HostFunction, HostFunctionEpisode, live_episode
from opaque_knapsack.solvers.prompts import Prompts, codeact_system_prompt, load_prompts
from opaque_knapsack.solvers.turns import CODEACT_STOPS, DROP, CutOff, cut_off_mode, next_reply, open_conversation

if TYPE_CHECKING:
    from opaque_knapsack.sandboxes import PythonRuntime, StepResult

CODE_BLOCK = re.compile(r"```(?:python|py|python3)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code_blocks(text: str) -> list[str]:
    """The fenced Python blocks of a reply, in order."""
    return [match.group(1) for match in CODE_BLOCK.finditer(text)]


def _error_text(result: StepResult) -> str | None:
    if result.error is None:
        return None
    return result.error.traceback or f"{result.error.type}: {result.error.message}"


def _notes(result: StepResult, timeout: float) -> list[str]:
    # A restart is not noted here: the runtime announces it once, at the head of stdout.
    if result.timed_out:
        return [f"The block ran longer than {timeout:g} s and was stopped."]
    return []


@agent
def codeact(
    max_turns: int | None = None,
    max_tool_calls: int | None = None,
    step_timeout: float | None = None,
    host_functions: Mapping[str, HostFunction] | None = None,
    tool_docs: str | None = None,
    instructions: str | None = None,
    prompts: str | Prompts | None = None,
    cut_off: CutOff = DROP,
) -> Agent:
    """CodeAct agent over the sample's persistent or stateless Python runtime.

    Args:
        max_turns: Assistant replies per episode (default: ``EpisodeLimits``).
        max_tool_calls: Tool calls allowed per code block, enforced by the
            harness (default: the runtime's config, ``RuntimeConfig``).
        step_timeout: Wall-time limit per code block, in seconds (default:
            the runtime's config).
        host_functions: Tools available inside the interpreter, by name, run
            through a ``HostFunctionEpisode`` (steps recorded, ``finish()`` ends
            the loop). Default: the tools of the episode the task's setup
            started (the knapsack tools in the opaque_knapsack/knapsack task).
        tool_docs: Tool documentation for the system prompt. Default: the
            episode's task family's (with ``host_functions``: each function's
            signature and first docstring line).
        instructions: What the task is, opening the system prompt. Default:
            the episode's task family's.
        prompts: A prompts file (YAML or JSON) or a ``Prompts``: the system
            prompt template, runtime notes, tool docs and few-shot turns
            (``tool_docs`` and ``instructions`` still win). Default: the
            package's prompts.
        cut_off: ``drop`` (the paper's loop): a reply that did not end
            normally (token limit, content filter) is not run, not kept and
            not counted; the model is told and the turn is spent. ``run``:
            it runs like any other reply.
    """
    prompt_set = load_prompts(prompts)
    cut_off = cut_off_mode(cut_off)

    async def execute(state: AgentState) -> AgentState:
        from opaque_knapsack.sandboxes import runtime_sandbox

        runtime: PythonRuntime = runtime_sandbox()
        # the runtime's limits, with the ones the user set over them
        limits = runtime.limits.updated(max_turns=max_turns, max_tool_calls=max_tool_calls, step_timeout=step_timeout)
        sample_store = store()
        episode = live_episode() if host_functions is None else HostFunctionEpisode(host_functions, sample_store)
        sample_store.set(AGENT_KEY, CODEACT)
        sample_store.set(RUNTIME_KEY, runtime.semantics.name)
        sample_store.set(PREBOUND_KEY, runtime.prebound_names)
        if not any(isinstance(m, ChatMessageSystem) for m in state.messages):
            system = codeact_system_prompt(
                runtime.semantics,
                family=episode.family,
                values=episode.prompt_values(),
                max_tool_calls=limits.max_tool_calls,
                max_turns=limits.max_turns,
                tool_docs=tool_docs,
                instructions=instructions,
                prompts=prompt_set,
                echo_last_expression=runtime.echoes_last_expression,
            )
            open_conversation(state, system, prompt_set.turns(runtime.semantics.name))

        end_reason: EndReason = EPISODE_ERROR
        try:
            end_reason = await _run_turns(state, runtime, episode, limits, cut_off=cut_off)
        finally:
            episode.end(end_reason)
        return state

    return execute


async def _run_turns(
    state: AgentState, runtime: PythonRuntime, episode: Episode, limits: EpisodeLimits, *, cut_off: CutOff
) -> EndReason:
    """The turn loop; returns why the episode ended."""
    max_turns = limits.max_turns
    model = get_model()
    functions = episode.host_functions()
    semantics = runtime.semantics
    end_reason: EndReason = TURN_LIMIT
    live_globals: list[str] = []  # persistent: the names the last step left behind
    for turn in range(1, max_turns + 1):
        reply = await next_reply(
            model, state, turn, normal_stops=CODEACT_STOPS, cut_off=cut_off, last_turn=turn == max_turns
        )
        episode.record(reply.record)
        if reply.end_reason is not None:
            end_reason = reply.end_reason
            break
        if reply.record.cut_off:
            continue  # the turn is spent; nothing of the reply runs
        output, record = reply.output, reply.record

        blocks = extract_code_blocks(output.message.text)
        if len(blocks) != 1:
            if turn < max_turns:
                text = prompts.NO_BLOCK if not blocks else prompts.several_blocks(len(blocks))
                state.messages.append(ChatMessageUser(content=text))
            continue

        started = time.perf_counter()
        result = await runtime.run_code(
            blocks[0], functions, max_tool_calls=limits.max_tool_calls, timeout=limits.step_timeout
        )
        record_step(record, blocks[0], result, _bound_at_start(result, semantics, live_globals))
        live_globals = list(result.globals or [])
        transcript().info(
            {
                "turn": turn,
                "code": blocks[0],
                "stdout": result.stdout,
                "error": _error_text(result),
                "undefined_name": result.undefined_name,
                "tool_calls": [call.model_dump() for call in result.tool_calls],
                "tool_calls_omitted": result.tool_calls_omitted,
                "kernel_restarted": result.kernel_restarted,
                "globals": result.globals,
                "bound_at_start": result.bound_at_start,
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "wall_time": result.wall_time,
                "harness_time": time.perf_counter() - started,
            },
            source=f"codeact step {turn}",
        )

        if episode.finished:
            end_reason = FINISHED
            break
        if turn < max_turns:
            state.messages.append(
                ChatMessageUser(
                    content=prompts.observation(
                        output=result.stdout,
                        error=_error_text(result),
                        semantics=semantics,
                        globals_=result.globals,
                        notes=_notes(result, limits.step_timeout),
                    )
                )
            )
    return end_reason


IDENTIFIER = re.compile(r"[^\W\d]\w*")


def _bound_at_start(result: StepResult, semantics: RuntimeSemantics, live_globals: list[str]) -> list[str]:
    """What the interpreter held when the step began, as the runtime reported it.

    A step process that died before reporting leaves the previous step's
    globals as the best knowledge (persistent; the Globals line leaves out
    modules, so a module carried into such a step is not counted as served);
    a stateless step holds nothing.
    """
    if result.bound_at_start is not None:
        return list(result.bound_at_start)
    return list(live_globals) if semantics.persists_state else []


def record_step(record: StepRecord, code: str, result: StepResult, bound_at_start: list[str]) -> StepRecord:
    """Fill the scorer's record of one block from the runtime's result.

    The one place this is done, for the agents' turn loop and for
    ``knapsack_runtime()`` alike. Every fact comes from a field the runtime
    set: a refused call from its ``limit`` flag, a NameError's name from
    ``undefined_name``; nothing is read from error text.
    """
    record.code = code
    record.tool_calls = sum(1 for call in result.tool_calls if not call.limit)  # refused calls never ran
    record.timed_out = result.timed_out
    record.kernel_restarted = result.kernel_restarted
    record.bound_at_start = mentioned(code, bound_at_start)
    if result.error is not None:
        record.error_type = result.error.type
        record.is_name_error = result.is_name_error
        record.undefined_name = result.undefined_name
    return record


def mentioned(code: str, names: list[str]) -> list[str]:
    """The names that occur in the code: a superset of what it reads, to keep records small."""
    words = set(IDENTIFIER.findall(code))
    return [name for name in names if name in words]
