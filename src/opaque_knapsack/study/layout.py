"""Where each stage writes inside the study folder: written once, here (the README shows the same tree).

    <folder>/
      tasks/teacher/                  the teachers' task files (tasks/knapsack/*.json, manifest.json)
      tasks/eval-<difficulty>/        one evaluation set per difficulty
      teacher/logs/                   the teachers' Inspect logs, one per runtime (an eval set)
      traces/<runtime>.jsonl          exported training conversations (+ .val.jsonl, .summary.json)
      models/tiny/                    the tiny base model (cpu-tiny)
      students/configs/<runtime>.yaml Axolotl configs
      students/<runtime>/             the trained LoRA adapters
      matrix/logs/                    the matrix's Inspect logs, one per condition (an eval set)
      report/README.md                the table, figures, statistics and comparisons on one page
      logs/<stage>.log                what each stage's tools printed
      workers/<stage>/                capture manifest, selections and worker commands
      superseded/<stage>-<n>/         outputs of a stage whose inputs changed, kept
      .stages/<stage>.json            the marker of a finished stage (its input and output hashes)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["StudyFolder"]


@dataclass(frozen=True)
class StudyFolder:
    """The paths of one study folder."""

    root: Path

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    def teacher_tasks(self) -> Path:
        return self.tasks / "teacher"

    def eval_tasks(self, label: str) -> Path:
        return self.tasks / f"eval-{label}"

    @property
    def teacher_logs(self) -> Path:
        return self.root / "teacher" / "logs"

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    def trace_file(self, runtime: str) -> Path:
        return self.traces / f"{runtime}.jsonl"

    @property
    def tiny_model(self) -> Path:
        return self.root / "models" / "tiny"

    @property
    def students(self) -> Path:
        return self.root / "students"

    def config(self, label: str) -> Path:
        return self.students / "configs" / f"{label}.yaml"

    def adapter(self, label: str) -> Path:
        return self.students / label

    def prepared(self, label: str) -> Path:
        return self.students / "prepared" / label

    @property
    def matrix_logs(self) -> Path:
        return self.root / "matrix" / "logs"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def stage_log(self, stage: str) -> Path:
        return self.logs / f"{stage}.log"

    @property
    def markers(self) -> Path:
        return self.root / ".stages"

    def workers(self, stage: str) -> Path:
        return self.root / "workers" / stage

    @property
    def superseded(self) -> Path:
        return self.root / "superseded"

    @property
    def server_pid(self) -> Path:
        """The running vLLM server's process group, so a run killed outright does not leave it behind."""
        return self.markers / "server.json"
