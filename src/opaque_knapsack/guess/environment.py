"""The hidden number and what the agent did to it; lives only in the harness process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GuessEnvironment:
    """One sample's hidden number, with a method per tool."""

    secret: int
    low: int
    high: int
    guesses: list[int] = field(default_factory=list)
    found: bool = False
    finished: bool = False

    def guess(self, n: int) -> str:
        """Compare a guess with the hidden number.

        Args:
            n: The guess, a whole number.

        Returns:
            "higher" if the hidden number is above n, "lower" if below, "correct" if it is n.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"guess() takes a whole number, got {n!r}")
        self.guesses.append(n)
        if n == self.secret:
            self.found = True
            return "correct"
        return "higher" if n < self.secret else "lower"

    def finish(self) -> str:
        """End the episode after the current step.

        Returns:
            A confirmation.
        """
        self.finished = True
        return "Episode finished."

    def to_state(self) -> dict[str, Any]:
        """What the scorer reads back from the store."""
        return {"guesses": list(self.guesses), "found": self.found, "low": self.low, "high": self.high}
