"""Golden files: expected outputs kept next to the test data, never edited by hand.

A test hands `Golden.check` the path of an expected-output file and what the code printed.
By default the two must match; `pytest --update-goldens` rewrites the file instead (and
creates a missing one), so that after a deliberate change in the output the goldens are
regenerated in one run and the change is reviewed as a diff.
"""

from __future__ import annotations

from pathlib import Path


class Golden:
    """An expected-output file: compared by default, rewritten with --update-goldens."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, path: Path, actual: str) -> None:
        if self.update:
            if not path.is_file() or path.read_text(encoding="utf-8") != actual:
                path.write_text(actual, encoding="utf-8")
            return
        assert path.is_file(), f"{path.name} is missing: run pytest --update-goldens"
        assert actual == path.read_text(encoding="utf-8")
