"""Continuity end to end on the embedded simulator: the film cuts where shots hand over and
shows each handover frame once, trims cut where they say, `frame: best` hands over a sharp
frame, and colour hold keeps a drifting chain where it began (`storyreel seams` measures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from click.testing import CliRunner
from support_cli import run_ok as run
from support_cli import write_story as write

from pipeline.cli import main
from pipeline.media.metrics import psnr
from pipeline.store import read_lock

pytestmark = pytest.mark.slow

SIZE = "defaults: {width: 640, height: 360, duration: 5}\n"
HEAD = "version: 1\nmodel: pixverse:1@3\n" + SIZE


def frames(path: Path | str) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def clip(data: dict[str, Any], key: str) -> list[np.ndarray]:
    return frames(next(s["path"] for s in data["shots"] if s["key"] == key))


CUTS = HEAD + """\
shots:
  a: {positivePrompt: "a hill at dawn", seed: 1}
  b: {from: {shot: a, frame: 60}, positivePrompt: "a river below the hill", seed: 2}
  c: {from: b, positivePrompt: "a forest by the river", seed: 3}
  door: {positivePrompt: "a red door in a stone wall", seed: 4}
  bridge:
    positivePrompt: "walking from the forest to the door"
    seed: 5
    inputs:
      frameImages:
        - {image: {shot: c, frame: last}, frame: first}
        - {image: {shot: door, frame: 24}, frame: last}
film:
  shots: [a, b, c, bridge, {shot: door, out: -1}]
"""


@pytest.fixture(scope="module")
def cut_film(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run(write(tmp_path_factory.mktemp("cuts"), CUTS))


def test_each_seam_shows_the_parent_up_to_the_cut_then_the_child_and_the_frame_once(
    cut_film: dict[str, Any],
) -> None:
    a, b, c, bridge, door = (clip(cut_film, k) for k in ("a", "b", "c", "bridge", "door"))
    film = frames(cut_film["films"][0]["path"])
    kept = [a[:60], b[:-1], c[:-1], bridge[:-1], door[24:-24]]
    assert cut_film["films"][0]["method"] == "copy"  # every cut falls where copy allows
    assert len(film) == sum(len(part) for part in kept)
    at = 0
    for part in kept:  # frame for frame: a copy decodes to the very same pictures
        assert all(np.array_equal(f, g) for f, g in zip(film[at : at + len(part)], part))
        at += len(part)
    # each handover frame is made once, by the later clip: its first frame (or, after the
    # bridge, the frame of the door it was made to end on) follows the earlier clip's cut
    assert psnr(a[60], b[0]) > 30 and psnr(b[-1], c[0]) > 30 and psnr(c[-1], bridge[0]) > 30
    assert psnr(bridge[-1], door[24]) > 30


def test_the_timeline_says_what_the_film_is_made_of(cut_film: dict[str, Any]) -> None:
    timeline = cut_film["films"][0]["timeline"]
    entries = [(e["key"], e["first"], e["last"], e["start"]) for e in timeline["entries"]]
    assert entries == [("a", 0, 59, 0), ("b", 0, 118, 60), ("c", 0, 118, 179),
                       ("bridge", 0, 118, 298), ("door", 24, 95, 417)]
    assert timeline["frames"] == 417 + 72 and timeline["cut_points"] == [60, 179, 298, 417]
    assert timeline["seconds"] == pytest.approx(489 / 24, abs=1e-5)


def test_run_json_says_which_frame_each_shot_was_made_from(cut_film: dict[str, Any]) -> None:
    used = {s["key"]: s["frames"] for s in cut_film["shots"]}
    assert [(f["shot"], f["frame"], f["index"]) for f in used["b"]] == [("a", 60, 60)]
    assert [(f["shot"], f["index"]) for f in used["bridge"]] == [("c", 119), ("door", 24)]


BEST = HEAD + """\
shots:
  a: {positivePrompt: "a cliff path in the wind", seed: 21}
  b: {from: {shot: a, frame: best}, positivePrompt: "the path goes down", seed: 22}
"""


@pytest.fixture(scope="module")
def best_film(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    story = write(tmp_path_factory.mktemp("best"), BEST)
    return story, run(story, "--sim-drift", "0.1")


def test_frame_best_hands_over_a_sharp_frame_before_the_smeared_end(
    best_film: tuple[Path, dict[str, Any]],
) -> None:
    """The simulator smears the last quarter second (6 frames); best looks at the last
    half second (12), so it finds a frame before the smear."""
    story, data = best_film
    (used,) = next(s["frames"] for s in data["shots"] if s["key"] == "b")
    index = used["index"]
    assert used["frame"] == "best" and 108 <= index < 114
    a, b = clip(data, "a"), clip(data, "b")
    assert psnr(a[index], b[0]) > 30
    film = frames(data["films"][0]["path"])
    assert np.array_equal(film[index - 1], a[index - 1]) and np.array_equal(film[index], b[0])
    assert len(film) == index + len(b)
    assert f"a:take1:best={index}" in read_lock(story.with_suffix(".lock")).shots["b"].inputs
    result = CliRunner().invoke(main, ["plan", str(story)])
    assert f"b takes frame {index} (best) of a" in result.stdout


def chain(hold: bool) -> str:
    lines = [HEAD.replace("640", "360")]
    if hold:
        lines.append("continuity: {color: match}\n")
    lines.append('shots:\n  s1: {positivePrompt: "a lighthouse on a cliff at dusk", seed: 31}\n')
    lines += [f'  s{i}: {{from: s{i - 1}, positivePrompt: "the walk goes on, part {i}", '
              f'seed: {30 + i}}}\n' for i in range(2, 10)]
    return "".join(lines)


def seams(story: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["seams", str(story), "--json", *args])
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    stories = {hold: write(tmp_path_factory.mktemp(f"hold-{hold}"), chain(hold))
               for hold in (False, True)}
    for story in stories.values():
        run(story, "--sim-drift", "0.1")
    return stories


def test_colour_hold_keeps_an_eight_hop_chain_near_its_first_colour(
    chains: dict[bool, Path],
) -> None:
    measured = {hold: seams(story)[1] for hold, story in chains.items()}
    drift = {hold: data["chains"][0]["drift"] for hold, data in measured.items()}
    assert len(measured[True]["seams"]) == 8 == len(measured[True]["chains"][0]["hops"]) - 1
    assert drift[False] > 20  # the simulator's drift adds up hop by hop
    assert drift[True] <= drift[False] / 4
    for data in measured.values():
        assert all(seam["psnr"] > 30 for seam in data["seams"])


def test_seams_check_holds_the_storyboards_thresholds(chains: dict[bool, Path]) -> None:
    story = chains[True]
    code, data = seams(story, "--check")
    assert code == 0 and not data["failed"]
    strict = story.parent / "strict.yaml"
    strict.write_text(story.read_text().replace("continuity: {color: match}",
                                                "continuity: {color: match, min_psnr: 60}"))
    code, data = seams(strict, "--check")
    assert code == 1 and data["failed"]
    assert all(seam["failures"][0].startswith("PSNR") for seam in data["seams"])


def test_seams_prints_a_table_and_each_chains_drift(chains: dict[bool, Path]) -> None:
    result = CliRunner().invoke(main, ["seams", str(chains[False])])
    assert result.exit_code == 0, result.stderr
    assert "s1 -> s2" in result.stdout and "last (119)" in result.stdout
    assert "chain s1 -> s2 -> s3 -> s4 -> s5 -> s6 -> s7 -> s8 -> s9: colour drift" in result.stdout
    assert "8 seams, 1 chains: all within the thresholds (min_psnr 30)" in result.stdout


def test_seams_before_a_run_says_to_run_first(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["seams", str(write(tmp_path, chain(False)))])
    assert result.exit_code == 1
    assert "s1 has not been made yet" in result.stderr and "storyreel run" in result.stderr
