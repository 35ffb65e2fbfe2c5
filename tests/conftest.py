"""Shared fixtures. Add new fixtures below; keep each one small and independent."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

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
