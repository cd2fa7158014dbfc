"""`opaque-knapsack --help`, and each command's, loads the argument parsers and nothing heavy.

Help must answer as fast as the interpreter starts: no numpy, no pydantic (the
schemas and configs), no task generator, no Inspect. The imports are read from
``python -X importtime`` (every module the interpreter imported), never from a
timing; ``benchmarks/cli_help.py`` measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "numpy",
    "pydantic",
    "pandas",
    "inspect_ai",
    "yaml",
    "rich",
    "opaque_knapsack.knapsack.generator",
    "opaque_knapsack.knapsack.schema",
    "opaque_knapsack.knapsack.presets",
    "opaque_knapsack.guess.generator",
    "opaque_knapsack.evaluate.matrix",
)


def imported(stderr: str) -> set[str]:
    """The modules an ``-X importtime`` run imported, from its report on stderr."""
    found = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the report's header line
                found.add(name)
    return found


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def importtime(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_reader_sees_what_an_import_loads() -> None:
    modules = imported(importtime("-c", "import json, numpy").stderr)
    assert {"json", "numpy"} <= modules and "numpy" in heavy(modules)


def test_help_imports_no_heavy_module() -> None:
    result = importtime("-m", "opaque_knapsack.cli", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: opaque-knapsack"), result.stderr[-2000:]
    modules = imported(result.stderr)
    # the parsers were built (importtime lists what import statements load, not importlib.import_module)
    assert {"opaque_knapsack._cli", "opaque_knapsack.records", "opaque_knapsack.train.launch_cli", "argparse"} <= modules
    assert heavy(modules) == []


COMMANDS_HELP = """
import contextlib, io, json, sys
from opaque_knapsack.cli import build_parser, main
[commands] = [a.choices for a in build_parser()._actions if a.dest == "command"]
codes = {}
for name in ["", *commands]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main([name, "--help"] if name else ["--help"])
        except SystemExit as exit:
            codes[name] = (exit.code, out.getvalue().startswith(f"usage: opaque-knapsack {name}".rstrip()))
print(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""


def test_every_command_help_imports_no_heavy_module() -> None:
    result = importtime("-c", COMMANDS_HELP)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    codes = report["codes"]
    assert {"", "generate", "quickstart", "export", "matrix", "stats", "study"} <= set(codes)
    assert {name: outcome for name, outcome in codes.items() if outcome != [0, True]} == {}
    assert "opaque_knapsack.reports.cli" in report["modules"]
    assert heavy(imported(result.stderr) | set(report["modules"])) == []


def test_version_is_read_when_asked_for() -> None:
    import opaque_knapsack

    result = subprocess.run(
        [sys.executable, "-m", "opaque_knapsack.cli", "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, f"opaque-knapsack {opaque_knapsack.__version__}\n", "")
    assert opaque_knapsack.__version__.count(".") >= 2
