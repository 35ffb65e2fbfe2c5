"""Every storyboard under tests/data/invalid/ is refused with exactly its expected report.

Each `NAME.yaml` holds one mistake a user would make; `NAME.expected` is what
`storyreel validate NAME.yaml` prints: every problem as file:line:col, the source line with a
caret, and a hint where one helps. Helper files (included scenes) live in `_support/`.
`pytest --update-goldens` rewrites the `.expected` files from what validate prints now.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from support_goldens import Golden

from pipeline.cli import main
from pipeline.errors import ExitCode

INVALID = Path(__file__).parent / "data" / "invalid"
CASES = sorted(p.name for p in INVALID.glob("*.yaml"))


def test_the_corpus_is_large_and_every_case_has_its_expected_output() -> None:
    assert len(CASES) >= 40
    expected = sorted(p.with_suffix(".yaml").name for p in INVALID.glob("*.expected"))
    assert expected == CASES


@pytest.mark.parametrize("name", CASES)
def test_invalid_storyboard_is_refused_with_its_exact_report(
        name: str, monkeypatch: pytest.MonkeyPatch, golden: Golden) -> None:
    monkeypatch.chdir(INVALID)
    result = CliRunner().invoke(main, ["validate", name])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    golden.check((INVALID / name).with_suffix(".expected"), result.stderr)


def test_validating_many_files_reports_every_problem_in_one_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    names = ["seed-negative.yaml", "ttl-30.yaml", "duplicate-key.yaml"]
    result = CliRunner().invoke(main, ["validate", *names])
    assert result.exit_code == ExitCode.USAGE
    expected = "".join(Path(n).with_suffix(".expected").read_text(encoding="utf-8")
                       for n in sorted(names))
    assert result.stderr == expected
