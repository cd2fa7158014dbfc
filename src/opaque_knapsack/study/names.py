"""The study's own vocabulary, in a leaf module (no imports), so the command line's parsers need nothing else."""

from __future__ import annotations

from typing import Literal, get_args

Profile = Literal["paper", "cpu-tiny"]
"""paper: the paper's settings (a GPU); cpu-tiny: the same loop on a CPU."""
PROFILES: tuple[Profile, ...] = get_args(Profile)

STAGE_NAMES = ("tasks", "teacher", "export", "train", "matrix", "report")
"""The stages, in the order they run."""
EVAL_STAGES = ("teacher", "matrix")
"""The stages that are Inspect eval sets (resumable, and scaled out through Inspect's worker protocol)."""
