"""One home for the PEFT call the training tests make."""

from __future__ import annotations

import warnings
from typing import Any


def lora_model(peft: Any, model: Any, config: Any) -> Any:
    """``peft.get_peft_model`` without PEFT's probe of a deprecated transformers attribute.

    PEFT 0.21.2 (the newest) reads transformers 5's deprecated
    ``is_gradient_checkpointing`` in ``PeftModel.__init__``; these models train
    without checkpointing, so the probe's answer does not matter. pyproject
    turns this warning into an error anywhere else.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return peft.get_peft_model(model, config)
