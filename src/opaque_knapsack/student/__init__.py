"""The CPU student tooling: a tiny Qwen3-architecture base model, its Python environments, and the
checks of the cpu-tiny study's training (loss falls, prepared rows carry the loss).

It builds on the training area (``train``: export, launchers) and, for a corpus when none is given,
the quickstart; the study reaches it through ``study/adapters.py``.
"""
