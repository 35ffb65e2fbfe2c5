"""The package type-checks under mypy --strict (the house style's promise)."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is in the test extras: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_passes_mypy_strict() -> None:
    out, err, status = api.run(["--strict", "--no-incremental", "--cache-dir", "/dev/null",
                                str(ROOT / "pipeline")])
    assert status == 0, out + err
