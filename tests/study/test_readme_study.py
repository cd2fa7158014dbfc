"""The README leads with the study, and its commands run as written (all but `study run` itself, which CI runs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def study_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## The study", 1)[1].split("\n## ", 1)[0]


def test_the_readme_leads_with_the_study():
    text = README.read_text(encoding="utf-8")
    assert text.index("## The study") < text.index("## Set up") < text.index("## Usage")
    for layout in ("report/README.md", ".stages/<stage>.json", "matrix/logs/", "workers/<stage>/"):
        assert layout in study_section()


def test_the_study_commands_run_as_written(tmp_path):
    block = re.search(r"```bash\n(.*?)```", study_section(), re.DOTALL).group(1)
    commands = [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert [command.split()[2] for command in commands] == ["init", "plan", "run", "status"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "160"}
    for command in commands:
        if " study run " in f"{command} ":
            continue  # the whole cpu-tiny study: .ci/run runs it after the suites
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and "Traceback" not in result.stderr, f"{command}\n{result.stdout}{result.stderr}"
    assert (tmp_path / "tiny.yaml").is_file()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "study init --profile cpu-tiny" in ci and "study run" in ci
