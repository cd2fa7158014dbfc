"""The "Differences from the paper's code" document covers every difference, and its checkable claims hold."""

from __future__ import annotations

import argparse
import inspect
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "differences-from-the-paper.md"
PACKAGE = ROOT / "src" / "opaque_knapsack"
KEPT_SECTION = "## Differences kept on purpose"


def test_every_difference_is_listed_with_a_reason() -> None:
    text = DOC.read_text()
    for heading in (
        "**The observation format.**",
        "**The globals list is kept in the history.**",
        "**No few-shot examples.**",
        "**No strategy rules in the goal prompt.**",
        "**Refusal messages never reveal a class.**",
        "**True persistence.**",
        "**Python-tagged code fences.**",
        "**Exact and static tool-call counts.**",
        "**Model errors are sample errors.**",
        "**Wall-clock limits are an option.**",
        "**The random stream.**",
        "**The signed effect size beside the paper's figure.**",
        "**Tool return values.**",
        "**Spaced JSON from `inspect`.**",
        "**All printed output is shown, not only `print`.**",
        "**A stateless step shares nothing with the one before.**",
        "**The reply without a Python block.**",
        "**Zero-optimum scoring.**",
    ):
        paragraph = text.split(heading, 1)[1].split("\n\n", 1)[0]
        assert "Kept" in paragraph or "compare with the paper" in paragraph, heading
    assert "docs/differences-from-the-paper.md" in (ROOT / "README.md").read_text()
    follows = text.split("## Differences kept on purpose", 1)[0]
    assert "| model errors |" not in follows  # the paper scores an episode whose model call failed
    for row in ("| runtime notes |", "| replies that did not end normally |", "| sampling settings |"):
        assert row in follows, row


def test_the_documents_claims_hold() -> None:
    from opaque_knapsack.knapsack import PRESETS, KnapsackEnvironment, KnapsackToolError, generate_instance
    from opaque_knapsack.solvers.codeact import extract_code_blocks

    assert 10 * 1.1 == 11.0 and 50 * 1.1 == 55.00000000000001
    assert extract_code_blocks("```\nx = 1\n```") == []
    assert extract_code_blocks("```python\nx = 1\n```") == ["x = 1\n"]
    instance = generate_instance(PRESETS["easy"], 0, 0)
    environment = KnapsackEnvironment(instance)
    allowed = set(instance.public.allowed_classes)
    forbidden = next(i for i, item in instance.private.items.items() if item.class_ not in allowed)
    environment.inspect(forbidden)
    try:
        environment.take_item(forbidden)
    except KnapsackToolError as error:
        assert f"'{instance.private.items[forbidden].class_}'" not in str(error)
    else:
        raise AssertionError("a take of a forbidden class was accepted")


# --- every difference names the option or code it refers to --------------------


def kept_paragraphs() -> dict[str, str]:
    """Heading -> paragraph of each difference kept on purpose."""
    section = DOC.read_text().split(KEPT_SECTION, 1)[1].split("\n## ", 1)[0]
    paragraphs = [p.strip() for p in section.split("\n\n") if p.strip().startswith("**")]
    return {p.split(".**", 1)[0] + ".**": p for p in paragraphs}


def _task_parameters() -> set[str]:
    from opaque_knapsack.knapsack import knapsack

    return set(inspect.signature(knapsack).parameters)


def _cli_flags() -> set[str]:
    from opaque_knapsack.cli import build_parser

    flags: set[str] = set()
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            flags.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return flags


def _source_words() -> set[str]:
    return {word for file in PACKAGE.rglob("*.py") for word in re.findall(r"\w+", file.read_text())}


def resolve(reference: str) -> bool | None:
    """Whether a backticked span names something that exists: a task option (`-T name=...`), a
    flag of `opaque-knapsack ...`, a file (`x.py`, `x.md`, `dir/`) or a code name (every dotted part
    a word of the package's source); None when the span is not a reference to code."""
    if reference.startswith("-T "):
        return reference[3:].split("=", 1)[0] in _task_parameters()
    if reference.startswith("opaque-knapsack "):
        return all(flag in _cli_flags() for flag in re.findall(r"--[a-z][a-z-]*", reference))
    if re.fullmatch(r"[\w./-]+(\.py|\.md|/)", reference):
        return any((base / reference).exists() for base in (ROOT, PACKAGE))
    if re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", reference):
        return all(part in _source_words() for part in reference.split("."))
    return None


def test_every_difference_kept_names_the_option_or_code_it_refers_to() -> None:
    paragraphs = kept_paragraphs()
    assert len(paragraphs) >= 16
    for heading, paragraph in paragraphs.items():
        found = {ref: resolve(ref) for ref in re.findall(r"`([^`]+)`", paragraph)}
        assert any(found.values()), f"{heading} names no option or code of this package: {found}"
        wrong = [ref for ref, ok in found.items() if ok is False]
        assert not wrong, f"{heading} names options or files that do not exist: {wrong}"


def test_the_resolver_tells_real_names_from_stale_ones() -> None:
    assert resolve("-T strict_take=false") and resolve("opaque-knapsack table --layout compact")
    assert resolve("knapsack/environment.py") and resolve("RuntimeConfig.stateless_keep_files")
    assert resolve("-T no_such_option=1") is False and resolve("opaque-knapsack table --no-such-flag") is False
    assert resolve("knapsack/no_such_file.py") is False and resolve("RuntimeConfig.no_such_field_here") is False
    assert resolve("Observation:") is None


def test_the_tool_answers_are_as_the_doc_says() -> None:
    from opaque_knapsack.knapsack import PRESETS, KnapsackEnvironment, generate_instance

    instance = generate_instance(PRESETS["easy"], 0, 0)
    environment = KnapsackEnvironment(instance)
    allowed = set(instance.public.allowed_classes)
    item = next(i for i, it in instance.private.items.items() if it.class_ in allowed and it.weight <= instance.public.capacity)
    answer = environment.inspect(item)
    details = instance.private.items[item]
    assert answer == json.dumps({"class": details.class_, "value": details.value, "weight": details.weight})
    assert answer.count(": ") == 3 and answer.count(", ") == 2  # spaced, five characters over the compact form
    assert len(answer) - len(json.dumps(json.loads(answer), separators=(",", ":"))) == 5
    assert ", " in environment.list_items()
    taken = json.loads(environment.take_item(item))
    assert taken == {"taken": item, "remaining_capacity": instance.public.capacity - details.weight}
    assert json.loads(environment.finish()) == {
        "finished": True, "items_taken": 1, "total_weight": details.weight, "capacity": instance.public.capacity,
    }


def test_a_reply_without_a_block_and_a_zero_optimum_are_as_the_doc_says() -> None:
    from opaque_knapsack.knapsack import PRESETS, generate_instance
    from opaque_knapsack.knapsack.scorer import episode_figures
    from opaque_knapsack.records import ScoreKey
    from opaque_knapsack.sandboxes import RuntimeConfig
    from opaque_knapsack.solvers import prompts

    assert "No Python block" in prompts.NO_BLOCK and "finish()" in prompts.NO_BLOCK
    assert callable(prompts.several_blocks)
    assert RuntimeConfig().stateless_keep_files is False
    instance = generate_instance(PRESETS["hard"], 0, 0)
    zero = instance.model_copy(update={"reference": instance.reference.model_copy(update={"optimal_value": 0})})
    figures = episode_figures(zero, {"inspected": [], "taken": [], "finished": True}, [])
    assert figures[ScoreKey.OPTIMALITY] == 0.0 and figures[ScoreKey.SOLVED] == 1.0


async def test_output_and_stateless_steps_are_as_the_doc_says() -> None:
    from opaque_knapsack.records import SEMANTICS
    from opaque_knapsack.sandboxes import Kernel, RuntimeConfig

    kernel = Kernel(SEMANTICS["stateless"], RuntimeConfig(step_timeout=10))
    await kernel.start()
    try:
        shown = await kernel.run_code(
            "import sys, warnings\nsys.stdout.write('out\\n')\nsys.stderr.write('err\\n')\n"
            "warnings.warn('careful')\nprint('printed')"
        )
        assert ["out", "err"] == shown.stdout.splitlines()[:2] and "careful" in shown.stdout
        assert shown.stdout.rstrip().endswith("printed")
        await kernel.run_code("import json\njson.marker = 1\nopen('notes.txt', 'w').write('x')\nkept = 1")
        probe = await kernel.run_code("import os, json\nprint(os.path.exists('notes.txt'), hasattr(json, 'marker'))")
        assert probe.stdout.strip() == "False False"
    finally:
        await kernel.close()
