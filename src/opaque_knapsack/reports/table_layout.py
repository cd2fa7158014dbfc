"""How the main results table looks: every layout choice named in one place.

``PAPER`` (the default) is the layout of the paper's ``main_table.py``, choice
by choice: a full-width ``table*`` float at ``\\small``; the columns ``cll``
then right-aligned figures, the last (score per 1k tokens) shaded; bold
headers; the difficulty as a rotated ``\\multirow`` label spanning its rows;
rows grouped by difficulty (groups in order of first appearance in the spec,
cells in spec order within a group); Solved as a plain count that is never
bold; Score in percent with one decimal and the ± half-width of its 5,000
resample percentile bootstrap CI; Steps with two decimals; the best value per
difficulty in bold, decided on the unrounded values.

``COMPACT`` is this package's earlier layout, kept on purpose as an option
(``opaque-knapsack table --layout compact``): a one-column ``table`` that needs
only ``booktabs``, Solved as ``13/20`` so the denominator is in sight, rows in
spec order, one decimal for steps, and bold decided on the printed values, so
two rows that print the same are both bold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

RowOrder = Literal["difficulty_groups", "spec"]
DifficultyLabel = Literal["rotated_multirow", "first_row"]
SolvedCount = Literal["plain", "of_executed"]
BoldOn = Literal["unrounded", "printed"]


@dataclass(frozen=True)
class TableLayout:
    """Every choice of how the LaTeX table looks (markdown follows the ones that apply to it)."""

    name: str
    float_env: str  # "table*" spans both columns of a two-column page
    placement: str
    font_size: str  # a LaTeX size command, "" for the document's size
    label_columns: str  # column types of difficulty, train, runtime
    shaded_last_column: str  # an xcolor colour for the last column (colortbl), "" for none
    bold_headers: bool
    difficulty_label: DifficultyLabel
    row_order: RowOrder
    solved_count: SolvedCount  # with the spec's solved_format "count": 13, or 13/20
    bold_solved: bool
    bold_on: BoldOn
    score_decimals: int
    steps_decimals: int
    time_decimals: int
    per_1k_decimals: int

    def column_spec(self, figures: int) -> str:
        """The tabular's column specification for ``figures`` figure columns."""
        last = rf">{{\columncolor{{{self.shaded_last_column}}}}}r" if self.shaded_last_column else "r"
        return self.label_columns + "r" * (figures - 1) + last

    def packages(self) -> tuple[str, ...]:
        """The LaTeX packages a document needs for this layout."""
        needed = ["booktabs"]
        if self.difficulty_label == "rotated_multirow":
            needed += ["multirow", "graphicx"]
        if self.shaded_last_column:
            needed += ["xcolor", "colortbl"]
        return tuple(needed)


PAPER = TableLayout(
    name="paper",
    float_env="table*",
    placement="t",
    font_size=r"\small",
    label_columns="cll",
    shaded_last_column="gray!15",
    bold_headers=True,
    difficulty_label="rotated_multirow",
    row_order="difficulty_groups",
    solved_count="plain",
    bold_solved=False,
    bold_on="unrounded",
    score_decimals=1,
    steps_decimals=2,
    time_decimals=1,
    per_1k_decimals=2,
)

COMPACT = replace(
    PAPER,
    name="compact",  # how it differs from the paper's, choice by choice
    float_env="table",
    font_size="",
    label_columns="lll",
    shaded_last_column="",
    bold_headers=False,
    difficulty_label="first_row",
    row_order="spec",
    solved_count="of_executed",
    bold_solved=True,
    bold_on="printed",
    steps_decimals=1,
)

LAYOUTS: dict[str, TableLayout] = {layout.name: layout for layout in (PAPER, COMPACT)}
DEFAULT_LAYOUT = PAPER
