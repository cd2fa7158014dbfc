"""Cut-off replies and billed tokens in the shared step figures, for new and older logs."""

from __future__ import annotations

from opaque_knapsack.records import StepRecord
from opaque_knapsack.scorers import step_figures


def test_cut_off_replies_are_counted_and_billed_but_not_in_the_totals() -> None:
    kept = StepRecord(turn=1, code="x = 1", input_tokens=90, output_tokens=10, total_tokens=100, billed_tokens=100)
    dropped = StepRecord(turn=2, code=None, stop_reason="max_tokens", cut_off=True, billed_tokens=250)
    figures = step_figures([kept.to_dict(), dropped.to_dict()], ["finish"])
    assert figures["cut_off_replies"] == 1
    assert figures["total_tokens"] == 100 and figures["billed_tokens"] == 350
    assert figures["steps"] == 2  # the dropped reply spent its turn


def test_a_log_from_before_billed_tokens_bills_every_reply() -> None:
    old = [
        {"turn": 1, "code": "x = 1", "input_tokens": 90, "output_tokens": 10, "total_tokens": 100},
        {"turn": 2, "code": None, "input_tokens": 40, "output_tokens": 5},  # no provider total either
    ]
    figures = step_figures(old, ["finish"])
    assert figures["cut_off_replies"] == 0 and figures["billed_tokens"] == 145
