"""Shared fixtures: the 2x2 matrix of test logs, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .logfactory import write_matrix


@pytest.fixture(scope="session")
def matrix_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four .eval logs, train {persistent, stateless} x runtime {persistent, stateless}."""
    log_dir = tmp_path_factory.mktemp("matrix")
    write_matrix(log_dir)
    return log_dir


@pytest.fixture(scope="session")
def matrix_paths(matrix_dir: Path) -> dict[tuple[str, str], Path]:
    return {
        (train, runtime): matrix_dir / f"easy_{train}_{runtime}.eval"
        for train in ("persistent", "stateless")
        for runtime in ("persistent", "stateless")
    }
