"""The whole study as one resumable command: spec, plan, stages, workers, the matrix.

`opaque-knapsack study init|plan|run|status|workers` drives the loop from one
YAML spec (``spec``): tasks, teacher traces in both runtimes, export, Axolotl
training, vLLM serving, the matrix and the report (``stages``). Each stage is
marked done by a hash of its inputs (``bookkeeping``), so a re-run resumes;
the evaluation stages are Inspect eval sets (``evalsets``), scaled out
through Inspect's eval-set worker protocol (``workers``). ``plan`` estimates
tokens, cost and GPU-hours before anything runs. The rest of the package is
reached through one module, ``adapters``.

Names are imported lazily so the command line starts without Inspect.
"""

from __future__ import annotations

from opaque_knapsack._lazy import exports_of, lazy_attributes

_EXPORTS = exports_of(__name__, {
    "context": ("Study", "StudyError", "RunOptions"),
    "spec": ("StudySpec", "load_spec", "profile_spec"),
    "runner": ("run_study", "study_states"),
    "plan": ("estimate_study",),
})

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_attributes(__name__, _EXPORTS)
