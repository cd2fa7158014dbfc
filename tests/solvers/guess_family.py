"""A second, toy task family: guess a hidden number. It proves the family seam.

Everything family-specific lives here (hidden state, host tools, episode,
setup, scorer, task); the CodeAct agent, the step records, the shared step
figures and the training export are the package's own, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import Score, Target, mean, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver

from opaque_knapsack.records import (
    END_REASON_KEY,
    FAMILY_METADATA_KEY,
    PREBOUND_KEY,
    STEPS_KEY,
)
from opaque_knapsack.scorers import step_figures
from opaque_knapsack.solvers import codeact, register_episode
from opaque_knapsack.solvers.episode import EnvironmentEpisode, HostFunction

GUESS_STATE_KEY = "guess:environment"
TOOLS = ("guess", "finish")
TOOL_DOCS = """\
Tools (plain Python functions, already defined in the interpreter):
- guess(n) -> str: "higher", "lower" or "correct" for your guess n.
- finish() -> str: end the episode after the current step."""
INSTRUCTIONS = "You are guessing a hidden whole number between 1 and 100 by writing Python code."


@dataclass
class GuessEnvironment:
    """The hidden number and what the agent did; lives only in the harness."""

    secret: int
    guesses: list[int] = field(default_factory=list)
    found: bool = False
    finished: bool = False

    def guess(self, n: int) -> str:
        """Compare a guess with the hidden number."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"guess() takes a whole number, got {n!r}")
        self.guesses.append(n)
        if n == self.secret:
            self.found = True
            return "correct"
        return "higher" if n < self.secret else "lower"

    def finish(self) -> str:
        """End the episode after the current step."""
        self.finished = True
        return "finished"


@dataclass
class GuessEpisode(EnvironmentEpisode[GuessEnvironment]):
    """This family's ``Episode``: the environment plus its step records, mirrored to the store."""

    def host_functions(self) -> Mapping[str, HostFunction]:
        return {"guess": self.environment.guess, "finish": self.environment.finish}

    def end(self, reason: str) -> None:
        env = self.environment
        self.sample_store.set(GUESS_STATE_KEY, {"guesses": env.guesses, "found": env.found})
        super().end(reason)


@solver
def guess_setup() -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        environment = GuessEnvironment(secret=int(state.metadata["secret"]))
        register_episode(GuessEpisode(environment, state.store), state.store)
        return state

    return solve


@scorer(metrics={"*": [mean()]})
def guess_scorer():  # type: ignore[no-untyped-def]
    async def score(state: TaskState, target: Target) -> Score:
        guessed = state.store.get(GUESS_STATE_KEY) or {}
        found = bool(guessed.get("found"))
        figures = {
            "optimality": 1.0 if found else 0.0,
            "solved": 1.0 if found else 0.0,
            "guesses": float(len(guessed.get("guesses", []))),
            **step_figures(state.store.get(STEPS_KEY) or [], TOOLS, state.store.get(PREBOUND_KEY) or ()),
        }
        return Score(value=figures, metadata={"end_reason": state.store.get(END_REASON_KEY)})

    return score


@task
def guess_number(secrets: tuple[int, ...] = (37,), runtime: str = "persistent", max_turns: int = 5) -> Task:
    return Task(
        dataset=[
            Sample(id=f"guess-{secret}", input="Find the hidden number.", metadata={"secret": secret})
            for secret in secrets
        ],
        setup=guess_setup(),
        solver=codeact(max_turns=max_turns, tool_docs=TOOL_DOCS, instructions=INSTRUCTIONS),
        scorer=guess_scorer(),
        sandbox=f"{runtime}_python",
        metadata={FAMILY_METADATA_KEY: "guess", "runtime": runtime},
    )


BISECT = '''```python
low, high = 1, 100
while True:
    answer = (low + high) // 2
    verdict = guess(answer)
    if verdict == "correct":
        break
    if verdict == "higher":
        low = answer + 1
    else:
        high = answer - 1
print(answer)
```'''
REPORT_AND_FINISH = "```python\nprint('found', answer)\nfinish()\n```"
