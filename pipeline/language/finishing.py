"""Finishing plan: a variant's rendered film block (`audio`, `duck_db`, `loudness`,
`captions`, `title`), its shots' `caption`s and its film plan in; the `Finish` laid over its
film, and the problems found, out.

`film.audio` is a file or a list of cues `{file, start, in, out, gain_db, fade_in,
fade_out}`; `start` is seconds on the film or `{shot: <id>, at: <seconds>}`. A shot's
`caption` is a string or a list of `{text, at, for}`. Problems point at the value written:
a cue or a title naming a shot that is not in the film, a cue cut outside its file or shorter
than its fades, and (a warning) a caption with more than about 20 characters a second.
`read_audio_files` is the one function here that reads files (compile calls it): every
soundtrack file is refused outside the storyboard's folder unless allowed, decoded to its
end (so a file that is not audio or is cut short fails now, not mid-run) and hashed. Pure
otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MediaError, Problem
from ..media.cues import (
    DEFAULT_DUCK_DB,
    DEFAULT_LOUDNESS,
    Caption,
    CaptionMode,
    Finish,
    ShotTime,
    SoundCue,
    Soundtrack,
    Title,
)
from ..store import sha256_file
from .load import Document, Path_
from .templates import ExpandedShot, shot_key
from .violations import closest_hint

if TYPE_CHECKING:
    from .films import FilmPlan
    from .plan import PlannedShot

__all__ = ["MAX_CPS", "AudioFile", "finish_plan", "read_audio_files", "written_cues"]

MAX_CPS = 20  # characters a second a caption may ask a viewer to read


@dataclass(frozen=True)
class AudioFile:
    """A soundtrack file as compile read it."""

    path: Path
    sha256: str
    seconds: float


def written_cues(film: Mapping[str, Any]) -> list[tuple[Path_, Mapping[str, Any]]]:
    """Each cue of `film.audio` as a mapping, with where it was written."""
    audio = film.get("audio")
    if audio is None:
        return []
    if not isinstance(audio, list):
        return [(("film", "audio"), {"file": audio})]
    return [(("film", "audio", i), cue if isinstance(cue, Mapping) else {"file": cue})
            for i, cue in enumerate(audio)]


def _file_path(film: Mapping[str, Any], where: Path_) -> Path_:
    """Where a cue's file name was written: the cue itself when it is only a name."""
    audio = film.get("audio")
    index = where[-1] if len(where) == 3 else None
    written = audio[index] if isinstance(audio, list) and isinstance(index, int) else audio
    return where + ("file",) if isinstance(written, Mapping) else where


def read_audio_files(doc: Document, folder: Path, films: Sequence[Mapping[str, Any]],
                     allow_outside: bool) -> tuple[dict[str, AudioFile], list[Problem]]:
    """Every soundtrack file the films name, checked, probed and hashed once each."""
    found: dict[str, AudioFile] = {}
    problems: list[Problem] = []
    for film in films:
        for where, cue in written_cues(film):
            name = str(cue.get("file"))
            if name in found:
                continue
            read = _read_audio(folder, name, allow_outside)
            if isinstance(read, AudioFile):
                found[name] = read
            else:
                problems.append(doc.problem(_file_path(film, where), f"film.audio: {read[0]}",
                                            hint=read[1]))
    return found, list(dict.fromkeys(problems))


def _read_audio(folder: Path, name: str, allow_outside: bool
                ) -> AudioFile | tuple[str, str | None]:
    target = (folder / name).resolve()
    if not allow_outside and not target.is_relative_to(folder):
        return (f"audio file {name!r} is outside the storyboard's folder",
                "copy it next to the storyboard, or pass --allow-outside to read it")
    if not target.is_file():
        return f"audio file not found: {name}", "a path is relative to the storyboard"
    from ..media.audio import probe_audio  # FFmpeg is loaded only for a soundtrack

    try:
        facts = probe_audio(target)
    except MediaError as exc:
        reason = exc.message.removeprefix(f"{target}: ")
        return (f"{name}: {reason}", "use a WAV, MP3, M4A/AAC, OGG/Opus or FLAC file that "
                                     "plays to its end")
    return AudioFile(target, sha256_file(target), facts.seconds)


def finish_plan(doc: Document, film: Mapping[str, Any], plan: FilmPlan,
                shots: Sequence[ExpandedShot], planned: Mapping[str, PlannedShot],
                audio: Mapping[str, AudioFile]) -> tuple[Finish | None, list[Problem]]:
    """What is laid over one variant's film, or None when nothing is."""
    variant = tuple(plan.variant.items())
    keys = tuple(dict.fromkeys(plan.keys))  # the film's shots, each once
    lengths = _stretches(plan, planned)
    problems: list[Problem] = []
    cues = [_cue(doc, where, cue, audio, keys, variant, problems)
            for where, cue in written_cues(film)]
    captions = _captions(shots, keys, lengths, problems)
    title = _title(doc, film.get("title"), keys, variant, problems)
    track = None
    if "audio" in film or "loudness" in film:
        track = Soundtrack(tuple(c for c in cues if c is not None),
                           float(film.get("duck_db", DEFAULT_DUCK_DB)),
                           float(film.get("loudness", DEFAULT_LOUDNESS)))
    if track is None and not captions and title is None:
        return None, problems
    names = tuple(str(cue.get("file")) for _, cue in written_cues(film))
    mode = CaptionMode(film.get("captions", CaptionMode.FILES))
    return Finish(track, tuple(captions), mode, title, names), problems


def _in_film(doc: Document, where: Path_, label: str, shot: str, keys: Sequence[str],
             variant: tuple[tuple[str, Any], ...], problems: list[Problem]) -> str | None:
    """The key of a shot named in the film block, or None (and a problem) if not in it."""
    key = shot_key(shot, variant)
    if key in keys:
        return key
    ids = list(dict.fromkeys(k.split("[")[0] for k in keys))
    problems.append(doc.problem(where, f"{label}: shot {shot!r} is not in the film",
                                hint=closest_hint(shot, ids) or f"the film's shots: "
                                                                f"{', '.join(ids)}"))
    return None


def _cue(doc: Document, where: Path_, cue: Mapping[str, Any], audio: Mapping[str, AudioFile],
         keys: Sequence[str], variant: tuple[tuple[str, Any], ...],
         problems: list[Problem]) -> SoundCue | None:
    read = audio.get(str(cue.get("file")))
    written = cue.get("start", 0.0)
    start: float | ShotTime = 0.0
    if isinstance(written, Mapping):
        key = _in_film(doc, where + ("start", "shot"), "film.audio start", str(written["shot"]),
                       keys, variant, problems)
        if key is None:
            return None
        start = ShotTime(key, float(written.get("at", 0.0)))
    else:
        start = float(written)
    if read is None:
        return None  # reported where the file was read
    trim_in, trim_out = float(cue.get("in", 0.0)), cue.get("out")
    made = SoundCue(read.path, read.sha256, start, trim_in,
                    None if trim_out is None else float(trim_out), float(cue.get("gain_db", 0.0)),
                    float(cue.get("fade_in", 0.0)), float(cue.get("fade_out", 0.0)))
    found = _cut_problem(made, read, str(cue.get("file")))
    if found is not None:
        problems.append(doc.problem(where, f"film.audio: {found}",
                                    hint="in and out are seconds from the file's start; a "
                                         "negative out counts from its end"))
        return None
    return made


def _cut_problem(cue: SoundCue, read: AudioFile, name: str) -> str | None:
    """What is wrong with where a cue cuts its file, if anything."""
    end = read.seconds if cue.trim_out is None else (
        cue.trim_out + read.seconds if cue.trim_out < 0 else cue.trim_out)
    if cue.trim_out is not None and not 0 < end <= read.seconds + 0.01:
        return f"out {cue.trim_out:g} s is outside {name} ({read.seconds:.2f} s)"
    if cue.trim_in >= end:
        return f"in {cue.trim_in:g} s leaves nothing of {name} ({read.seconds:.2f} s, up to " \
               f"{end:.2f} s)"
    if cue.fade_in + cue.fade_out > end - cue.trim_in + 1e-6:
        return (f"fade_in and fade_out ({cue.fade_in + cue.fade_out:g} s) are longer than the "
                f"cue ({end - cue.trim_in:.2f} s)")
    return None


def _stretches(plan: FilmPlan, planned: Mapping[str, PlannedShot]) -> dict[str, float]:
    """Seconds each shot is on screen in the film, as planned: its clip less its trims and
    the crossfade into the next (a handover loses a frame, a rounding error here)."""
    lengths: dict[str, float] = {}
    for i, entry in enumerate(plan.entries):
        duration = planned[entry.key].duration
        out = duration if entry.trim_out is None else (
            entry.trim_out + duration if entry.trim_out < 0 else entry.trim_out)
        fade = plan.seams[i].seconds if i < len(plan.seams) else 0.0
        lengths.setdefault(entry.key, max(0.0, out - (entry.trim_in or 0.0) - fade))
    return lengths


def _captions(shots: Sequence[ExpandedShot], keys: Sequence[str],
              lengths: Mapping[str, float], problems: list[Problem]) -> list[Caption]:
    captions: list[Caption] = []
    for shot in shots:
        if shot.key not in keys or "caption" not in shot.glue:
            continue
        written = shot.glue["caption"]
        items = written if isinstance(written, list) else [{"text": written}]
        mine = [Caption(shot.key, str(item["text"]), float(item.get("at", 0.0)),
                        None if item.get("for") is None else float(item["for"]))
                for item in items]
        captions += mine
        problems += _reading_speed(shot, mine, isinstance(written, list), lengths[shot.key])
    return captions


def _reading_speed(shot: ExpandedShot, mine: list[Caption], listed: bool, length: float
                   ) -> list[Problem]:
    """A warning at each caption that asks for more than `MAX_CPS` characters a second, or
    that starts after its shot has left the screen."""
    found = []
    ats = sorted(c.at for c in mine)
    for i, caption in enumerate(mine):
        path: Path_ = ("caption", i, "text") if listed else ("caption",)
        layer = shot.locate(path)
        later = [at for at in ats if at > caption.at]
        until = caption.seconds or (later[0] if later else length) - caption.at
        if caption.at >= length:
            found.append(layer.doc.problem(layer.path + path, f"shots.{shot.id}.caption: starts "
                                           f"at {caption.at:g} s, after the shot leaves the "
                                           f"film (about {length:.1f} s)", warning=True))
        elif len(caption.text) > MAX_CPS * until:
            found.append(layer.doc.problem(
                layer.path + path, f"shots.{shot.id}.caption: {len(caption.text)} characters "
                f"in {until:.1f} s is {len(caption.text) / until:.0f} a second; more than about "
                f"{MAX_CPS} is hard to read", warning=True,
                hint="shorten it, split it, or give it longer (for: seconds)"))
    return found


def _title(doc: Document, title: Any, keys: Sequence[str],
           variant: tuple[tuple[str, Any], ...], problems: list[Problem]) -> Title | None:
    if not isinstance(title, Mapping):
        return None
    over = title.get("over", "black")
    key = None
    if over != "black":
        key = _in_film(doc, ("film", "title", "over"), "film.title.over", str(over), keys,
                       variant, problems)
        if key is None:
            return None
    return Title(str(title["text"]), float(title.get("seconds", 3.0)), key)
