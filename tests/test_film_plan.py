"""The film plan: where chained shots hand over, trims, `frame: best` and colour hold, as
the language phase sees them (nothing rendered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import Problem, StoryboardError
from pipeline.language.compile import compile_storyboard
from pipeline.language.films import FilmEntry, FilmPlan, SeamKind
from pipeline.language.plan import Plan
from pipeline.store import ObjectStore, ShotRecord, Take
from pipeline.store.derived import DerivedStore

HEAD = "version: 1\nmodel: pixverse:1@3\ndefaults: {width: 640, height: 360, duration: 5}\n"
CHAIN = HEAD + """\
shots:
  a: {positivePrompt: "a hill at dawn", seed: 1}
  b: {from: {shot: a, frame: 60}, positivePrompt: "a river", seed: 2}
  c: {from: b, positivePrompt: "a forest", seed: 3}
  d: {positivePrompt: "the sea", seed: 4}
"""


def plan_of(path: Path, **kwargs: Any) -> Plan:
    return compile_storyboard(path, display=path.name, **kwargs).plan


def film_of(path: Path) -> FilmPlan:
    return plan_of(path).films[0]


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(StoryboardError) as caught:
        compile_storyboard(path, display=path.name)
    return [p for p in caught.value.problems if not p.warning]


def only_problem(path: Path) -> Problem:
    found = problems_of(path)
    assert len(found) == 1, [p.render() for p in found]
    return found[0]


def test_chained_neighbours_hand_over_and_the_others_take_the_transition(
    write_board: Any,
) -> None:
    path = write_board(CHAIN + "film: {transition: {type: crossfade, seconds: 0.5}}\n")
    film = film_of(path)
    assert [s.kind for s in film.seams] == [SeamKind.HANDOVER, SeamKind.HANDOVER,
                                            SeamKind.CROSSFADE]
    assert [s.seconds for s in film.seams] == [0.0, 0.0, 0.5]
    assert film.entries == (FilmEntry("a", stop=60), FilmEntry("b", stop="last"),
                            FilmEntry("c"), FilmEntry("d"))
    first = film.seams[0].handover
    assert first is not None and (first.source, first.frame, first.target) == ("a", 60, "b")


def test_neighbours_in_the_other_order_do_not_hand_over(write_board: Any) -> None:
    film = film_of(write_board(CHAIN + "film: {shots: [b, a, c]}\n"))
    assert [s.kind for s in film.seams] == [SeamKind.CUT, SeamKind.CUT]
    assert all(e.start == 0 and e.stop is None for e in film.entries)


def test_a_bridge_ends_before_its_last_frame_and_the_next_starts_on_the_frame_it_ends_on(
    write_board: Any,
) -> None:
    path = write_board(HEAD + """\
shots:
  a: {positivePrompt: "a path", seed: 1}
  door: {positivePrompt: "a door", seed: 2}
  bridge:
    positivePrompt: "walking to the door"
    inputs:
      frameImages:
        - {image: {shot: a, frame: last}, frame: first}
        - {image: {shot: door, frame: 30}, frame: last}
film: {shots: [a, bridge, door]}
""")
    film = film_of(path)
    assert [s.kind for s in film.seams] == [SeamKind.HANDOVER, SeamKind.HANDOVER]
    assert film.entries == (FilmEntry("a", stop="last"), FilmEntry("bridge", stop="last"),
                            FilmEntry("door", start=30))


def test_trims_are_kept_on_their_entries_and_shown_by_plan_json(write_board: Any) -> None:
    path = write_board(CHAIN + "film: {shots: [{shot: d, in: 1.5, out: -0.5}, a]}\n")
    film = film_of(path)
    assert film.entries[0] == FilmEntry("d", 1.5, -0.5)
    result = CliRunner().invoke(main, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert '"in": 1.5' in result.stdout and '"out": -0.5' in result.stdout


@pytest.mark.parametrize(("film", "at", "message", "hint"), [
    ("[a, {shot: b, in: 1}]", "1}", "film.shots[1].in: 1 s starts b after frame 0, the frame "
     "it takes over from a on", "drop in"),
    ("[{shot: a, out: 2}, b]", "2}", "film.shots[0].out: 2 s ends a before frame 60, the "
     "frame b continues from", "drop out, or continue b from an earlier frame"),
    ("[{shot: d, out: 7}]", "7}", "film.shots[0].out: 7 s is outside d (5 s)",
     "negative from its end"),
    ("[{shot: d, in: 5}]", "5}", "film.shots[0].in: 5 s is at or past the end of d", None),
    ("[{shot: d, in: 3, out: -2.5}]", "{shot: d", "film.shots[0]: the film keeps no frame of d",
     "keep in before out"),
    ("[a, {shot: cc, in: 2}]", "cc,", "film.shots: unknown shot 'cc'", "did you mean"),
])
def test_a_trim_that_breaks_the_film_is_an_error_at_its_line(
    write_board: Any, film: str, at: str, message: str, hint: str | None
) -> None:
    path = write_board(CHAIN + f"film:\n  shots: {film}\n")
    problem = only_problem(path)
    assert problem.message.startswith(message), problem.message
    assert problem.location is not None and problem.location.line == 10
    assert problem.source_line is not None
    assert problem.source_line[problem.location.col - 1 :].startswith(at)
    if hint:
        assert problem.hint is not None and hint in problem.hint


def test_a_trim_into_the_half_second_where_best_is_chosen_is_an_error(write_board: Any) -> None:
    path = write_board(HEAD + """\
shots:
  a: {positivePrompt: "a hill", seed: 1}
  b: {from: {shot: a, frame: best}, positivePrompt: "a river", seed: 2}
film:
  shots: [{shot: a, out: -0.25}, b]
""")
    problem = only_problem(path)
    assert problem.message == ("film.shots[0].out: -0.25 s ends a inside its last half "
                               "second, where b's frame: best is chosen")
    assert problem.location is not None and problem.location.line == 8


def test_a_handover_from_the_first_frame_plays_both_whole_with_a_warning(
    write_board: Any,
) -> None:
    """Cutting the parent before its first frame would leave nothing of it; a storyboard
    that was valid before cut points existed still plans."""
    path = write_board(HEAD + """\
shots:
  a: {positivePrompt: "a hill", seed: 1}
  b: {from: {shot: a, frame: first}, positivePrompt: "a river", seed: 2}
""")
    plan = plan_of(path)
    assert [s.kind for s in plan.films[0].seams] == [SeamKind.CUT]
    assert plan.films[0].entries == (FilmEntry("a"), FilmEntry("b"))
    (warning,) = plan.warnings
    assert "b continues from the first frame of a, so the film cannot cut a there" in (
        warning.message)
    assert warning.hint is not None and "put b before a" in warning.hint


@pytest.mark.parametrize(("text", "message"), [
    ("film: {shots: [{shot: a, out: 0}]}\n", "out is seconds from the clip's start"),
    ("film: {shots: [{shot: a, start: 2}]}\n", "unknown parameter 'start'"),
    ("film: {shots: [5]}\n", "a film entry is a shot id or {shot: <id>"),
    ("continuity: {color: exact}\n", "'exact' is not one of 'match', 'none'"),
    ("continuity: {min_psnr: -3}\n", "-3 must be at least 0"),
])
def test_the_schema_knows_the_new_keys(write_board: Any, text: str, message: str) -> None:
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: a hill, seed: 1}\n" + text)
    found = problems_of(path)
    assert any(message in p.message for p in found), [p.message for p in found]


def test_thresholds_belong_to_the_top_level_continuity(write_board: Any) -> None:
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: a hill, continuity: {min_psnr: 3}}\n")
    assert "unknown parameter 'min_psnr'" in only_problem(path).message


def test_the_schema_accepts_best_and_continuity_everywhere_it_is_documented(
    write_board: Any,
) -> None:
    path = write_board(HEAD.replace("duration: 5}", "duration: 5, continuity: {color: none}}")
                       + """\
continuity: {color: match, min_psnr: 32, min_ssim: 0.9, max_delta_e: 3, max_drift: 5}
shots:
  a: {positivePrompt: "a hill", seed: 1, continuity: {color: match}}
  b:
    positivePrompt: "a river"
    inputs: {frameImages: [{image: {shot: a, frame: best}, frame: first}]}
""")
    plan = plan_of(path)
    assert [s.color_hold for s in plan.shots] == [True, False]  # shot > defaults > top level


def test_colour_hold_grades_the_frame_handed_over_and_changes_the_childs_identity(
    write_board: Any, tmp_path: Path,
) -> None:
    plain = plan_of(write_board(CHAIN, "plain.yaml"))
    held = plan_of(write_board("continuity: {color: match}\n" + CHAIN, "held.yaml"))
    image = held.shot("b").request["inputs"]["frameImages"][0]["image"]
    assert image["color"] == "match"
    assert held.shot("a").identity == plain.shot("a").identity
    assert held.shot("b").identity != plain.shot("b").identity
    assert held.shot("b").to_json()["continuity"] == {"color": "match"}


def test_a_shot_given_its_last_frame_is_not_graded(write_board: Any) -> None:
    path = write_board("continuity: {color: match}\n" + HEAD + """\
shots:
  a: {positivePrompt: "a path", seed: 1}
  door: {positivePrompt: "a door", seed: 2}
  bridge:
    positivePrompt: "to the door"
    inputs: {frameImages: [{shot: a}, {shot: door, frame: first}]}
""")
    plan = plan_of(path)
    assert {s.key: s.color_hold for s in plan.shots} == {"a": True, "door": True,
                                                          "bridge": False}


BEST = HEAD + """\
shots:
  a: {positivePrompt: "a hill", seed: 1}
  b: {from: {shot: a, frame: best}, positivePrompt: "a river", seed: 2}
"""


def test_plan_says_best_is_chosen_at_run_time_until_the_parent_is_made(
    write_board: Any,
) -> None:
    path = write_board(BEST)
    result = CliRunner().invoke(main, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert "b takes frame best (chosen at run time) of a" in result.stdout
    plan = plan_of(path)
    assert plan.shot("b").request["inputs"]["frameImages"][0]["image"]["chosen"] is None


def test_plan_shows_the_chosen_frame_once_the_parent_is_in_the_store(
    write_board: Any, tmp_path: Path,
) -> None:
    path = write_board(BEST)
    store = ObjectStore(tmp_path / ".storyreel")
    identity = plan_of(path).shot("a").identity
    clip = store.put_bytes(b"a clip", "mp4")
    take = Take(1, "uuid", clip.sha256, "mp4", clip.size, {"frames": 120, "fps": "24/1"})
    store.record_shot(identity, ShotRecord(identity, "task", 1, (take,)))
    DerivedStore(store).record(clip.sha256, "best-frame-1", {"index": 113})
    result = CliRunner().invoke(main, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert "b takes frame 113 (best) of a" in result.stdout
