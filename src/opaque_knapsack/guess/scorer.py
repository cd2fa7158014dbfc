"""The guess family's scorer: found or not, how many guesses, and the shared step figures."""

from __future__ import annotations

from inspect_ai.scorer import Score, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from opaque_knapsack.guess.episode import GUESS_STATE_KEY
from opaque_knapsack.guess.family import GUESS
from opaque_knapsack.records import END_REASON_KEY, END_REASON_METADATA_KEY, PREBOUND_KEY, STEPS_KEY, ScoreKey
from opaque_knapsack.scorers import step_figures


@scorer(metrics={"*": [mean(), stderr()]})
def guess_scorer():  # type: ignore[no-untyped-def]
    """Solved (the number was found), guesses, and the effort, token and behaviour figures."""

    async def score(state: TaskState, target: Target) -> Score:
        final = state.store.get(GUESS_STATE_KEY) or {}
        found = 1.0 if final.get("found") else 0.0
        guesses = len(final.get("guesses", []))
        figures = {
            ScoreKey.OPTIMALITY.value: found,
            ScoreKey.SOLVED.value: found,
            "guesses": float(guesses),
            **step_figures(state.store.get(STEPS_KEY) or [], GUESS.tools, state.store.get(PREBOUND_KEY) or ()),
        }
        return Score(
            value=figures,
            answer=str(final.get("guesses", [])[-1]) if guesses else "",
            explanation=f"{'found' if found else 'not found'} after {guesses} guesses; "
            f"episode ended: {state.store.get(END_REASON_KEY) or 'unknown'}",
            metadata={END_REASON_METADATA_KEY: state.store.get(END_REASON_KEY)},
        )

    return score
