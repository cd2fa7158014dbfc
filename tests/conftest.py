"""Shared test settings: keep Inspect quiet and its logs inside the test's tmp dir."""

import os

os.environ.setdefault("INSPECT_DISPLAY", "none")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")
