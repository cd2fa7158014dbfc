"""The paper's students' sampling settings, in a leaf module (no imports), so the command line's parsers need nothing else."""

from __future__ import annotations

STUDENT_TEMPERATURE = 0.2
STUDENT_MAX_TOKENS = 12288
"""The task imposes no sampling settings (its teacher ran on the provider's
defaults), so the matrix passes these to ``eval_set`` for the students."""
