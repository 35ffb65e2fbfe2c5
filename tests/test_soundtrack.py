"""The soundtrack laid under a stitched film: as long as the film, cues where their shots
are, ducked under the clips' own sound, faded out to silence, at the target loudness, in
the container's own codec; and audio files that cannot be used, refused with the reason."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from support_clips import BLUE, GREEN, RED, make_clip, video_packets
from support_sound import (
    CLIP_HZ,
    MUSIC_HZ,
    film_sound,
    level_at,
    onset,
    tone,
    write_audio,
    write_tone,
)

from pipeline.errors import MediaError
from pipeline.media.audio import probe_audio, read_sound
from pipeline.media.cues import Finish, ShotTime, SoundCue, Soundtrack, Title
from pipeline.media.finish import finish_film
from pipeline.media.probe import probe_video
from pipeline.media.sound import AUDIO_RATE
from pipeline.media.soundtrack import cue_sound, loudness_of
from pipeline.media.stitch import Span, StitchResult, Transition, stitch_film
from pipeline.store import sha256_file

FPS = 24


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("soundtrack")


@pytest.fixture(scope="module")
def film(folder: Path) -> StitchResult:
    """a: red, cut at frame 60; b: green with its own sound, from frame 12; c: blue, faded in
    over 0.5 s: 180 frames, 7.5 s."""
    red = make_clip(folder / "red.mp4", 72, RED)
    green = make_clip(folder / "green.mp4", 72, GREEN, audio=True)
    blue = make_clip(folder / "blue.mp4", 72, BLUE)
    spans = [Span(red, 0, 60, "a"), Span(green, 12, None, "b"), Span(blue, key="c")]
    return stitch_film(spans, folder / "stitched.mp4",
                       transitions=[Transition(), Transition("crossfade", 0.5)])


@pytest.fixture(scope="module")
def music(folder: Path) -> SoundCue:
    path = write_tone(folder / "music.m4a", 12.0)
    return SoundCue(path, sha256_file(path))


def finished(film: StitchResult, out: Path, *cues: SoundCue, title: Title | None = None,
             loudness: float = -16.0, duck_db: float = 12.0) -> Path:
    finish = Finish(Soundtrack(cues, duck_db, loudness), title=title)
    finish_film(film.path, film.timeline, finish, out)
    return out


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float((stream.duration or 0) * (stream.time_base or Fraction(0)))


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov"])
def test_the_soundtrack_lasts_as_long_as_the_film_in_the_containers_codec(
        film: StitchResult, music: SoundCue, folder: Path, suffix: str) -> None:
    out = finished(film, folder / f"film{suffix}", music)
    codec = "opus" if suffix == ".webm" else "aac"
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == codec
    video = probe_video(out).duration  # WebM's: the container's, the sound's end included
    assert video == pytest.approx(film.duration, abs=1e-6 if suffix != ".webm" else 1 / FPS)
    assert film_sound(out).shape[1] / AUDIO_RATE == pytest.approx(video, abs=1 / FPS)
    if suffix != ".webm":  # WebM keeps no per-stream duration
        assert audio_seconds(out) == pytest.approx(video, abs=1 / FPS)


def test_the_picture_is_copied_packet_for_packet(film: StitchResult, music: SoundCue,
                                                 folder: Path) -> None:
    out = finished(film, folder / "copied.mp4", music)
    assert video_packets(out) == video_packets(film.path)


@pytest.fixture(scope="module")
def quiet(folder: Path, film: StitchResult) -> StitchResult:
    """The same cuts as `film`, without any clip's own sound."""
    green = make_clip(folder / "green-quiet.mp4", 72, GREEN)
    spans = [Span(folder / "red.mp4", 0, 60, "a"), Span(green, 12, None, "b"),
             Span(folder / "blue.mp4", key="c")]
    return stitch_film(spans, folder / "quiet.mp4",
                       transitions=[Transition(), Transition("crossfade", 0.5)])


def test_a_cue_at_a_shot_starts_where_that_shot_starts_in_the_film(
        quiet: StitchResult, music: SoundCue, folder: Path) -> None:
    """c begins 0.5 s before b's end, where the crossfade starts: frame 108, 4.5 s."""
    assert [e.start for e in quiet.timeline.entries] == [0, 60, 108]
    cue = SoundCue(music.path, music.sha256, ShotTime("c"))
    sound = film_sound(finished(quiet, folder / "at-c.mp4", cue))
    assert onset(sound, 0.25 * float(np.abs(sound).max())) == pytest.approx(108 / FPS,
                                                                             abs=1 / FPS)


def test_a_title_card_moves_every_cue_and_keeps_the_sound_in_step(
        film: StitchResult, music: SoundCue, folder: Path) -> None:
    cue = SoundCue(music.path, music.sha256, ShotTime("c", 0.25))
    out = finished(film, folder / "titled.mp4", cue, title=Title("Relay", 1.0), duck_db=0)
    assert probe_video(out).duration == pytest.approx(film.duration + 1.0, abs=1e-6)
    sound = film_sound(out)
    assert sound.shape[1] / AUDIO_RATE == pytest.approx(film.duration + 1.0, abs=1 / FPS)
    assert onset(sound[:, : AUDIO_RATE]) == float("inf")  # the card is silent
    clip_sound = onset(sound)  # b's own sound comes first: 1 s of card, then 2.5 s of a
    assert clip_sound == pytest.approx(3.5, abs=1 / FPS)
    music_at = level_at(sound, MUSIC_HZ, 1.0 + 108 / FPS + 0.25 + 0.1, 0.5)
    assert level_at(sound, MUSIC_HZ, 1.0 + 108 / FPS + 0.25 - 0.6, 0.5) < music_at / 20


def test_the_music_ducks_under_a_clips_own_sound(film: StitchResult, music: SoundCue,
                                                 folder: Path) -> None:
    out = finished(film, folder / "ducked.mp4", music, duck_db=12)
    sound = film_sound(out)
    free = level_at(sound, MUSIC_HZ, 0.5, 1.5)  # a: no sound of its own
    under = level_at(sound, MUSIC_HZ, 3.0, 1.0)  # b: the clip's tone
    assert under / free == pytest.approx(10 ** (-12 / 20), rel=0.15)
    assert level_at(sound, CLIP_HZ, 3.0, 1.0) > 2 * under


def test_the_film_fades_out_to_silence(film: StitchResult, music: SoundCue,
                                       folder: Path) -> None:
    sound = film_sound(finished(film, folder / "faded.mp4", music))
    end = sound.shape[1]
    assert np.abs(sound[:, end - 240 :]).max() < 2e-3  # its last 5 ms
    before = level_at(sound, MUSIC_HZ, end / AUDIO_RATE - 2.0, 0.5)
    late = level_at(sound, MUSIC_HZ, end / AUDIO_RATE - 0.4, 0.2)
    assert late < before / 2


@pytest.mark.parametrize(("suffix", "target"), [(".mp4", -16.0), (".webm", -16.0),
                                                (".mp4", -23.0)])
def test_the_film_is_at_the_target_loudness(film: StitchResult, music: SoundCue,
                                            folder: Path, suffix: str, target: float) -> None:
    out = finished(film, folder / f"loud{-target:g}{suffix}", music, loudness=target)
    assert loudness_of(film_sound(out)) == pytest.approx(target, abs=1.0)


def test_loud_music_is_limited_below_full_scale(film: StitchResult, folder: Path) -> None:
    """Raising a quiet, peaky file to -9 LUFS would clip; the limiter holds it at -1 dBFS."""
    clicks = tone(8.0, MUSIC_HZ, 0.01)
    clicks[:, :: AUDIO_RATE // 4] = 0.9
    path = write_audio(folder / "clicks.wav", clicks)
    out = finished(film, folder / "limited.mp4", SoundCue(path, sha256_file(path)),
                   loudness=-9.0)
    assert np.abs(film_sound(out)).max() < 1.0


def test_a_cue_is_cut_from_its_file_with_its_gain_and_fades(folder: Path) -> None:
    path = write_audio(folder / "steady.wav", np.full((2, 10 * AUDIO_RATE), 0.5, np.float32))
    cue = SoundCue(path, "", 0.0, trim_in=1.0, trim_out=-2.0, gain_db=-6.0, fade_in=1.0,
                   fade_out=0.5)
    sound = cue_sound(cue, 20.0)
    assert sound.shape[1] == 7 * AUDIO_RATE
    assert sound[0, 0] == 0.0 and sound[0, -1] == 0.0
    assert sound[0, 3 * AUDIO_RATE] == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-3)
    assert sound[0, AUDIO_RATE // 2] == pytest.approx(0.25 * 10 ** (-6 / 20), rel=1e-2)
    cut = cue_sound(cue, 3.0)  # the film ends first: no fade out of its own
    assert cut.shape[1] == 3 * AUDIO_RATE
    assert cut[0, -1] == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-3)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".ogg", ".flac"])
def test_every_kind_of_soundtrack_file_is_read(folder: Path, suffix: str) -> None:
    path = write_tone(folder / f"tone{suffix}", 2.0)
    assert probe_audio(path).seconds == pytest.approx(2.0, abs=0.06)
    sound = read_sound(path, 0.5, 1.0)
    assert sound.shape == (2, AUDIO_RATE)
    assert level_at(sound, MUSIC_HZ, 0.1, 0.5) == pytest.approx(0.3, rel=0.1)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".ogg", ".flac"])
def test_a_cut_off_soundtrack_file_is_refused(folder: Path, suffix: str) -> None:
    whole = write_tone(folder / f"whole{suffix}", 6.0).read_bytes()
    cut = folder / f"cut{suffix}"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(MediaError, match=r"cut short"):
        probe_audio(cut)


def test_a_file_that_is_not_sound_is_refused(folder: Path) -> None:
    text = folder / "notes.mp3"
    text.write_text("these are not sounds\n")
    with pytest.raises(MediaError, match="cannot be read as sound: not an audio file"):
        probe_audio(text)
    picture = make_clip(folder / "silent.mp4", 24, RED)
    with pytest.raises(MediaError, match="holds no sound"):
        probe_audio(picture)
