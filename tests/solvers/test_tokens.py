"""Token figures: the provider's total, input with cached tokens, cached and reasoning tokens."""

from __future__ import annotations

from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from opaque_knapsack.knapsack import knapsack
from opaque_knapsack.solvers.turns import usage_figures


def test_usage_figures_keep_cached_tokens_and_the_providers_total() -> None:
    # what Inspect's OpenAI provider makes of prompt_tokens 2,000 of which 1,251 cached
    usage = ModelUsage(
        input_tokens=749, input_tokens_cache_read=1251, output_tokens=662, reasoning_tokens=40, total_tokens=2662
    )
    assert usage_figures(usage) == {
        "input_tokens": 2000,
        "cached_input_tokens": 1251,
        "output_tokens": 662,
        "reasoning_tokens": 40,
        "total_tokens": 2662,
    }
    written = ModelUsage(input_tokens=10, input_tokens_cache_write=5, output_tokens=1, total_tokens=16)
    assert usage_figures(written)["input_tokens"] == 15
    assert usage_figures(None) == {}


def test_episode_tokens_are_the_providers_totals(tmp_path) -> None:
    replies = []
    for text in ("```python\nprint(1)\n```", "```python\nfinish()\n```"):
        output = ModelOutput.from_content("mockllm/model", text)
        output.usage = ModelUsage(
            input_tokens=100, input_tokens_cache_read=300, output_tokens=20, reasoning_tokens=7, total_tokens=420
        )
        replies.append(output)
    [log] = inspect_eval(
        knapsack(num=1, runtime="stateless"),
        model=get_model("mockllm/model", custom_outputs=replies),
        log_dir=str(tmp_path),
    )
    assert log.status == "success", log.error
    figures = log.samples[0].scores["knapsack_scorer"].value
    assert figures["total_tokens"] == 840
    assert figures["input_tokens"] == 800
    assert figures["cached_input_tokens"] == 600
    assert (figures["output_tokens"], figures["reasoning_tokens"]) == (40, 14)
