"""The difficulty presets' names, in a leaf module (no imports), so the command line's parsers need nothing else."""

from __future__ import annotations

from typing import Literal, get_args

Preset = Literal["easy", "medium", "hard"]
"""The paper's difficulty presets: every difficulty choice (task option, CLIs,
report order) comes from here, as ``PRESET_NAMES``; their settings are
``presets.PRESETS``."""
PRESET_NAMES: tuple[Preset, ...] = get_args(Preset)
DEFAULT_PRESET: Preset = "easy"
