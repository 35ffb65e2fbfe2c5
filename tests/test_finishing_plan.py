"""The film's soundtrack, captions and title as the language phase sees them: what is laid
over each film, and every mistake reported at its line before a cent is spent (files that
are not usable audio, shots that are not in the film, captions too fast to read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support_sound import write_tone

from pipeline.cli import main
from pipeline.errors import Problem, StoryboardError
from pipeline.language.compile import compile_storyboard
from pipeline.language.plan import Plan
from pipeline.media.cues import Caption, CaptionMode, ShotTime, Title

BOARD = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
vars: {place: harbour}
variants: {sea: [calm, stormy]}
shots:
  a:
    positivePrompt: "a hill at dawn"
    seed: 1
    caption: "Dawn over the {{ place }}"
  b:
    from: a
    positivePrompt: "a river"
    seed: 2
    caption:
      - {text: "The river", at: 0.5, for: 2}
      - {text: "The {{ sea }} sea", at: 3}
  c: {positivePrompt: "the sea", seed: 3}
film:
  shots: [a, b, c]
  transition: {type: crossfade, seconds: 0.5}
"""


def plan_of(path: Path, **kwargs: Any) -> Plan:
    return compile_storyboard(path, display=path.name, **kwargs).plan


def problems_of(path: Path, **kwargs: Any) -> list[Problem]:
    with pytest.raises(StoryboardError) as caught:
        compile_storyboard(path, display=path.name, **kwargs)
    return caught.value.problems


@pytest.fixture
def music(tmp_path: Path) -> Path:
    return write_tone(tmp_path / "music.m4a", 8.0)


def test_a_film_carries_its_soundtrack_captions_and_title(write_board: Any,
                                                          music: Path) -> None:
    path = write_board(BOARD + """\
  audio:
    - music.m4a
    - {file: music.m4a, start: {shot: c, at: 0.5}, in: 1, out: -1, gain_db: -6,
       fade_in: 0.5, fade_out: 2}
  duck_db: 9
  loudness: -18
  captions: burn
  title: {text: "The {{ sea }} relay", seconds: 2, over: b}
""")
    calm, stormy = (film.finish for film in plan_of(path).films)
    assert calm is not None and stormy is not None
    assert calm.soundtrack is not None
    first, second = calm.soundtrack.cues
    assert (first.path, first.start, first.trim_out) == (music.resolve(), 0.0, None)
    assert (second.start, second.trim_in, second.trim_out, second.gain_db) == (
        ShotTime("c[sea=calm]", 0.5), 1.0, -1.0, -6.0)
    assert (second.fade_in, second.fade_out) == (0.5, 2.0)
    assert (calm.soundtrack.duck_db, calm.soundtrack.loudness) == (9.0, -18.0)
    assert calm.mode is CaptionMode.BURN
    assert calm.captions == (Caption("a[sea=calm]", "Dawn over the harbour"),
                             Caption("b[sea=calm]", "The river", 0.5, 2.0),
                             Caption("b[sea=calm]", "The calm sea", 3.0))
    assert stormy.captions[-1] == Caption("b[sea=stormy]", "The stormy sea", 3.0)
    assert calm.title == Title("The calm relay", 2.0, "b[sea=calm]")


def test_without_a_soundtrack_captions_or_title_a_film_has_nothing_laid_over(
        write_board: Any) -> None:
    bare = BOARD.split("\n")
    path = write_board("\n".join(bare[:9] + bare[10:14] + bare[17:]))
    assert [film.finish for film in plan_of(path).films] == [None, None]


def test_a_caption_is_not_part_of_the_request_nor_the_shots_identity(write_board: Any) -> None:
    with_captions = plan_of(write_board(BOARD, "captioned.yaml"))
    without = plan_of(write_board(BOARD.replace('    caption: "Dawn over the {{ place }}"\n',
                                                ""), "bare.yaml"))
    assert "caption" not in with_captions.shot("a[sea=calm]").request
    assert ([s.identity for s in with_captions.shots] == [s.identity for s in without.shots])


def test_the_default_is_caption_files_at_minus_16_lufs(write_board: Any, music: Path) -> None:
    finish = plan_of(write_board(BOARD + "  audio: music.m4a\n")).films[0].finish
    assert finish is not None and finish.soundtrack is not None
    assert (finish.mode, finish.soundtrack.duck_db, finish.soundtrack.loudness) == (
        CaptionMode.FILES, 12.0, -16.0)
    assert finish.title is None


def cli_problems(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(path), *args])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(("name", "content", "message"), [
    ("notes.mp3", b"these are not sounds\n", "notes.mp3: cannot be read as sound: not an "
                                             "audio file, or one cut short"),
    ("cut.flac", None, "cut.flac: damaged or cut short: decoding stops after"),
    ("missing.ogg", "", "audio file not found: missing.ogg"),
])
def test_an_unusable_audio_file_fails_at_plan_time_at_its_line(
        write_board: Any, tmp_path: Path, name: str, content: bytes | None,
        message: str) -> None:
    if content is None:
        whole = write_tone(tmp_path / "whole.flac", 6.0).read_bytes()
        (tmp_path / name).write_bytes(whole[: len(whole) // 2])
    elif content:
        (tmp_path / name).write_bytes(content)
    path = write_board(BOARD + f"  audio:\n    - {{file: {name}, start: 1}}\n")
    code, err = cli_problems(path)
    assert code == 2
    assert f"board.yaml:23:14: film.audio: {message}" in err, err
    assert "hint:" in err


def test_an_audio_file_outside_the_folder_is_refused_unless_allowed(
        tmp_path: Path, write_board: Any) -> None:
    write_tone(tmp_path / "music.m4a", 4.0)
    path = write_board(BOARD + "  audio: ../music.m4a\n", "inner/board.yaml")
    (problem,) = [p for p in problems_of(path) if not p.warning]
    assert problem.message == "film.audio: audio file '../music.m4a' is outside the " \
                              "storyboard's folder"
    assert problem.location is not None and problem.location.line == 22
    assert "--allow-outside" in (problem.hint or "")
    assert plan_of(path, allow_outside=True).films[0].finish is not None


def test_a_cue_or_title_naming_a_shot_not_in_the_film_is_an_error(write_board: Any,
                                                                   music: Path) -> None:
    path = write_board(BOARD.replace("shots: [a, b, c]", "shots: [a, b]") + """\
  audio:
    - {file: music.m4a, start: {shot: c}}
    - {file: music.m4a, start: {shot: bb}}
  title: {text: Relay, over: nowhere}
""")
    found = {(p.location.line if p.location else 0, p.message) for p in problems_of(path)
             if not p.warning}
    assert found == {(23, "film.audio start: shot 'c' is not in the film"),
                     (24, "film.audio start: shot 'bb' is not in the film"),
                     (25, "film.title.over: shot 'nowhere' is not in the film")}
    hints = [p.hint for p in problems_of(path) if "'bb'" in p.message]
    assert hints == ["did you mean 'b'?"]


@pytest.mark.parametrize(("cue", "message"), [
    ("in: 9", "in 9 s leaves nothing of music.m4a"),
    ("out: 12", "out 12 s is outside music.m4a"),
    ("out: -9", "out -9 s is outside music.m4a"),
    ("in: 2, out: 3, fade_in: 1, fade_out: 0.5",
     "fade_in and fade_out (1.5 s) are longer than the cue (1.00 s)"),
])
def test_a_cue_cut_outside_its_file_is_an_error(write_board: Any, music: Path, cue: str,
                                                message: str) -> None:
    path = write_board(BOARD + f"  audio:\n    - {{file: music.m4a, {cue}}}\n")
    (problem,) = [p for p in problems_of(path) if not p.warning]
    assert problem.message.startswith(f"film.audio: {message}")
    assert problem.location is not None and problem.location.line == 23


def test_a_caption_too_fast_to_read_is_a_warning_at_its_line(write_board: Any) -> None:
    fast = "It runs to the sea, carrying everything it ever met along the way"
    path = write_board(BOARD.replace('"The {{ sea }} sea"', f'"{fast}"'))
    warnings = plan_of(path).warnings
    assert {(w.location.line if w.location else 0) for w in warnings} == {17}
    assert warnings[0].message == (f"shots.b.caption: {len(fast)} characters in 1.5 s is 43 "
                                   "a second; more than about 20 is hard to read")
    code, err = cli_problems(path)
    assert code == 0 and "board.yaml:17:16: warning: shots.b.caption" in err


def test_a_caption_after_its_shot_has_left_the_film_is_a_warning(write_board: Any) -> None:
    path = write_board(BOARD.replace("at: 3}", "at: 6}"))
    (warning,) = {w.message for w in plan_of(path).warnings}
    assert warning == ("shots.b.caption: starts at 6 s, after the shot leaves the film "
                       "(about 4.5 s)")


@pytest.mark.parametrize(("text", "message"), [
    ("defaults: {caption: hello}\n", "defaults.caption: a caption belongs to a shot"),
    ("film: {captions: sometimes}\n", "film.captions: 'sometimes' is not one of 'files'"),
])
def test_captions_written_in_the_wrong_place_are_schema_errors(
        write_board: Any, text: str, message: str) -> None:
    head = "version: 1\nmodel: pixverse:1@3\nshots:\n  a: {positivePrompt: x, duration: 5}\n"
    found = [p.message for p in problems_of(write_board(head + text))]
    assert any(m.startswith(message) for m in found), found


def test_the_harbour_lights_example_lays_music_captions_and_a_title_over_its_film() -> None:
    path = Path(__file__).parent.parent / "examples" / "harbour-lights" / "harbour-lights.yaml"
    (film,) = plan_of(path).films
    finish = film.finish
    assert finish is not None and finish.soundtrack is not None and finish.title is not None
    assert [c.start for c in finish.soundtrack.cues] == [0.0, ShotTime("sea")]
    assert finish.soundtrack.cues[0].path.stat().st_size < 300_000
    assert {c.shot for c in finish.captions} == {"quay", "stairs", "lamp", "sea"}
    assert "The light of Port Avel is lit." in {c.text for c in finish.captions}
    assert (finish.mode, finish.title.over) == (CaptionMode.BOTH, None)
    assert plan_of(path).warnings == ()


def test_plan_says_what_is_laid_over_each_film(write_board: Any, music: Path) -> None:
    path = write_board(BOARD + "  audio: music.m4a\n  captions: burn\n"
                               "  title: {text: Relay, over: b}\n")
    result = CliRunner().invoke(main, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert ("board-calm.mp4: a 3 s title over b[sea=calm]; 1 sound cue at -16 LUFS; "
            "3 captions burned in") in result.stdout
