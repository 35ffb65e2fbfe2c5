"""What continuity measures and corrects in a clip: seam metrics, the sharpest late frame,
colour grading against drift, and graded clips kept once in the store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from support_clips import FPS, RED, H, Picture, W, decoded, make_clip, picture, write_pictures

from pipeline.media.colour import lab_to_rgb, rgb_to_lab
from pipeline.media.focus import find_sharpest
from pipeline.media.grade import Correction, grade_clip, measure_correction
from pipeline.media.metrics import (
    colour_drift,
    delta_e,
    mean_colour_difference,
    psnr,
    sharpness,
    ssim,
)
from pipeline.media.probe import probe_video
from pipeline.run.continuity import BEST_KIND, GRADE_KIND, best_frame, graded_clip
from pipeline.store import ObjectStore, Take
from pipeline.store.derived import DerivedStore

WARM = np.array([255, 170, 60], np.float64)


def scene(index: int) -> Picture:
    """A detailed picture (blocks, a gradient, the frame index), for blur and colour."""
    img = picture(index, RED).astype(np.float64)
    ramp = np.linspace(0, 120, W)[None, :, None]
    img[H // 2 :] = img[H // 2 :] * 0.5 + ramp
    grid = ((np.arange(H)[:, None] // 6 + np.arange(W)[None, :] // 6) % 2) * 60
    img[H // 2 :, :, 1] += grid[H // 2 :]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_frames(path: Path, pictures: list[Picture]) -> Path:
    return write_pictures(path, pictures, {"crf": "12"})


def drifted(img: Picture, amount: float) -> Picture:
    """The picture moved `amount` of the way towards a warm cast."""
    return np.clip(img * (1 - amount) + WARM * amount, 0, 255).astype(np.uint8)


def blurred(img: Picture, length: int) -> Picture:
    out = img.astype(np.float64)
    shifted = [np.roll(out, s, axis=1) for s in range(-(length // 2), length - length // 2)]
    return (sum(shifted) / length).astype(np.uint8)


# --- metrics -----------------------------------------------------------------------------


def test_identical_frames_score_perfectly() -> None:
    img = scene(3)
    assert math.isinf(psnr(img, img))
    assert ssim(img, img) == pytest.approx(1.0)
    assert delta_e(img, img) == pytest.approx(0.0, abs=1e-4)
    assert colour_drift(img, img) == pytest.approx(0.0, abs=1e-4)
    assert mean_colour_difference(img, img) == 0.0


def test_a_tint_shows_in_delta_e_and_drift_not_in_structure() -> None:
    img = scene(3)[H // 2 :]  # the textured half: no flat black, where SSIM is touchy
    tinted = np.clip(img.astype(int) + [14, 0, -14], 0, 255).astype(np.uint8)
    assert delta_e(img, tinted) > 4 and colour_drift(img, tinted) > 4
    assert ssim(img, tinted) > 0.95
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 3, img.shape), 0, 255)
    assert psnr(img, noisy) > 35 and colour_drift(img, noisy) < 1 and ssim(img, noisy) < 1


def test_lab_matches_cie_and_round_trips() -> None:
    rgb = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    lab = rgb_to_lab(rgb)
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.02)
    np.testing.assert_allclose(lab[3], [32.30, 79.19, -107.86], atol=0.02)
    every = np.random.default_rng(0).integers(0, 256, (5000, 3), dtype=np.uint8)
    assert np.abs(lab_to_rgb(rgb_to_lab(every)).astype(int) - every).max() == 0


def test_blur_lowers_sharpness() -> None:
    img = scene(5)
    assert sharpness(blurred(img, 9)) < sharpness(blurred(img, 3)) < sharpness(img)
    assert sharpness(np.full((20, 20, 3), 128, np.uint8)) == 0.0


def test_metrics_refuse_frames_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(scene(1), scene(1)[:-2])


# --- the sharpest late frame ---------------------------------------------------------------


def test_best_frame_is_the_sharp_one_before_a_blurred_end(tmp_path: Path) -> None:
    """A camera pans over a scene; the last four frames smear more and more, and frame 110
    (in the last half second too) is blurred, so the best is the last clean one, 115."""
    pictures = [np.roll(scene(0), 2 * i, axis=1) for i in range(120)]
    for i, length in zip(range(116, 120), (5, 9, 13, 17)):
        pictures[i] = blurred(pictures[i], length)
    pictures[110] = blurred(pictures[110], 9)
    focus = find_sharpest(write_frames(tmp_path / "clip.mp4", pictures))
    assert focus.first == 120 - FPS // 2
    assert focus.index == 115
    assert len(focus.sharpness) == FPS // 2
    assert focus.sharpness[110 - focus.first] < focus.sharpness[115 - focus.first]


def test_best_frame_of_a_steady_clip_is_its_last(tmp_path: Path) -> None:
    clip = write_frames(tmp_path / "steady.mp4", [scene(0)] * 48)
    assert find_sharpest(clip).index == 47


# --- grading -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip whose colour drifts a fifth of the way to a warm cast by its last frame."""
    folder = tmp_path_factory.mktemp("drift")
    return write_frames(folder / "drift.mp4", [drifted(scene(i), 0.2 * i / 95)
                                              for i in range(96)])


def test_grading_cancels_the_drift_and_leaves_the_first_frame(tmp_path: Path,
                                                              drifting: Path) -> None:
    correction = measure_correction(drifting)
    assert correction.drift > 5
    frames = grade_clip(drifting, tmp_path / "graded.mp4", correction)
    before, after = decoded(drifting), decoded(tmp_path / "graded.mp4")
    assert frames == len(after) == 96
    assert colour_drift(after[0], after[-1]) < colour_drift(before[0], before[-1]) / 4
    assert colour_drift(before[0], after[0]) < 0.5  # no correction at the first frame
    assert psnr(before[0], after[0]) > 33
    middle = colour_drift(before[0], after[48])
    assert middle < colour_drift(before[0], before[48]) / 2
    probe = probe_video(tmp_path / "graded.mp4")
    assert (probe.width, probe.height, probe.fps, probe.frames) == (W, H, FPS, 96)


def test_a_correction_is_nothing_at_the_first_frame_and_whole_at_the_last() -> None:
    first, last = scene(0), drifted(scene(0), 0.3)
    correction = Correction.between(first, last)
    scale, offset = correction.at(0.0)
    np.testing.assert_allclose(scale, 1, atol=1e-6)
    np.testing.assert_allclose(offset, 0, atol=1e-4)
    assert Correction.from_json(correction.to_json()).drift == pytest.approx(correction.drift,
                                                                              abs=1e-3)


def test_grading_keeps_the_sound(tmp_path: Path) -> None:
    sound = make_clip(tmp_path / "sound.mp4", 48, RED, audio=True)
    grade_clip(sound, tmp_path / "graded.mp4", measure_correction(sound))
    assert probe_video(tmp_path / "graded.mp4").has_audio


# --- the store keeps graded clips and choices once ----------------------------------------


def _take(store: ObjectStore, clip: Path) -> Take:
    stored = store.put_file(clip, "mp4")
    return Take(1, "uuid", stored.sha256, "mp4", stored.size, {"frames": 96, "fps": "24/1"})


def test_a_graded_clip_is_made_once_and_the_take_is_left_alone(tmp_path: Path,
                                                              drifting: Path) -> None:
    store = ObjectStore(tmp_path / ".storyreel")
    take = _take(store, drifting)
    original = store.path_for(take.sha256, "mp4").read_bytes()
    graded = graded_clip(store, take)
    assert graded.sha256 != take.sha256 and graded.path.is_file()
    record = DerivedStore(store).find(take.sha256, GRADE_KIND)
    assert record is not None and record["sha256"] == graded.sha256
    made = graded.path.stat().st_mtime_ns
    assert graded_clip(store, take) == graded
    assert graded.path.stat().st_mtime_ns == made
    assert store.path_for(take.sha256, "mp4").read_bytes() == original


def test_a_graded_clip_whose_file_is_gone_is_made_again(tmp_path: Path, drifting: Path) -> None:
    store = ObjectStore(tmp_path / ".storyreel")
    take = _take(store, drifting)
    graded = graded_clip(store, take)
    graded.path.unlink()
    assert graded_clip(store, take).path.is_file()


def test_the_best_frame_is_chosen_once_and_recorded(tmp_path: Path, drifting: Path) -> None:
    store = ObjectStore(tmp_path / ".storyreel")
    take = _take(store, drifting)
    index = best_frame(store, take)
    assert FPS * 4 - FPS // 2 <= index < 96
    record = DerivedStore(store).find(take.sha256, BEST_KIND)
    assert record is not None and record["index"] == index
    DerivedStore(store).record(take.sha256, BEST_KIND, {**record, "index": 90})
    assert best_frame(store, take) == 90  # read back, not chosen again
