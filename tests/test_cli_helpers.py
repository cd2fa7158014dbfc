"""The pieces every area's commands share (opaque_knapsack._cli): bad input is one line naming the flag."""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass

import pytest
from pydantic import BaseModel, Field

from opaque_knapsack._cli import (
    add_command,
    add_repeatable,
    options_from,
    progress_bar,
    require_at_least,
    user_errors,
)
from opaque_knapsack.errors import CommandError


class Options(BaseModel):
    num: int = Field(default=1, ge=1)
    students: list[str] = []
    dedup: bool = True


@dataclass
class Plain:
    num: int
    label: str = "x"


def _parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="t")
    parser = add_command(root.add_subparsers(), "go", lambda args: 0, help="go", description="Go somewhere.")
    parser.add_argument("--num", type=int, default=1)
    add_repeatable(parser, "--student", "LABEL", "A student.")
    return root


def test_a_command_carries_its_handler_and_collects_repeated_flags():
    args = _parser().parse_args(["go", "--student", "a", "--student", "b"])
    assert args.handler(args) == 0 and args.student == ["a", "b"]
    assert _parser().parse_args(["go"]).student == []


def test_options_take_the_flags_named_like_their_fields_and_explicit_values_win():
    args = argparse.Namespace(num=3, no_dedup=True, label="ignored-by-pydantic-model", command="go")
    options = options_from(Options, args, students=["a"], dedup=not args.no_dedup)
    assert options == Options(num=3, students=["a"], dedup=False)
    assert options_from(Plain, args) == Plain(num=3, label="ignored-by-pydantic-model")


def test_a_refused_value_is_one_line_naming_the_flag_as_typed():
    with pytest.raises(CommandError) as refused:
        options_from(Options, argparse.Namespace(num=0))
    assert str(refused.value) == "--num 0: Input should be greater than or equal to 1"
    with pytest.raises(CommandError, match=r"^--student 'x': Input should be a valid list"):
        options_from(Options, argparse.Namespace(num=1), flags={"students": "--student"}, students="x")


def test_counts_below_the_minimum_are_refused_by_flag():
    require_at_least(argparse.Namespace(num=0, seed_start=0), 0, "num", "seed_start")
    with pytest.raises(CommandError, match="^--seed-start must be at least 1, got 0$"):
        require_at_least(argparse.Namespace(num=1, seed_start=0), 1, "num", "seed_start")


def test_user_errors_become_one_line_and_others_pass_through():
    with pytest.raises(CommandError, match="^failed at export: no logs$"), user_errors(ValueError, prefix="failed at "):
        raise ValueError("export: no logs")
    with pytest.raises(KeyError), user_errors(ValueError):
        raise KeyError("a bug stays a bug")


def test_the_progress_bar_is_silent_off_a_terminal(monkeypatch):
    from rich.console import Console

    screen = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **_: Console(file=screen, force_terminal=False))
    with progress_bar("working", quiet=False, total=3) as bar:
        bar.advance(2)
        bar.update(3, 3)
    assert screen.getvalue() == ""
