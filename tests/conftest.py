"""Shared fixtures. Add new fixtures below; keep each one small and independent."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from support_goldens import Golden

WriteBoard = Callable[..., Path]


@pytest.fixture
def write_board(tmp_path: Path) -> WriteBoard:
    """Write a storyboard (dedented YAML) under tmp_path and return its path."""

    def write(text: str, name: str = "board.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="Rewrite the expected outputs under tests/data/ (the .expected and "
                          ".plan.json files) from what the code prints now, instead of "
                          "comparing; review the diff before committing it.")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """Compare printed output with its golden file (or rewrite it with --update-goldens)."""
    return Golden(bool(request.config.getoption("--update-goldens")))
