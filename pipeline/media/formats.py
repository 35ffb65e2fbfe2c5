"""Output formats: the one table of the containers storyreel writes (MP4, WEBM, MOV).

Input: the API's `outputFormat` name or a film's file name.
Output: an `OutputFormat`: its extension, content type, muxer, codecs, which codecs it takes
as they are, and the encoder settings. The language phase, the run, the simulator and the
film writer all read this table, so a format is described once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from av.container import OutputContainer

__all__ = ["ENCODER_THREADS", "EXTENSIONS", "FORMATS", "H264_OPTIONS", "OutputFormat",
           "VP9_OPTIONS", "format_for_file", "open_output"]

# A fixed count, not the machine's: encoder output depends on the thread count, and a re-run
# on another machine must give the same film byte for byte.
ENCODER_THREADS = 4

# ultrafast: a re-encode must keep pace with ffmpeg's; crf 20 buys the quality back in bits.
# stitchable=1 keeps x264's headers independent of the pictures, so every segment encoded
# with these settings has the same SPS/PPS and can share a track with copied packets.
H264_OPTIONS = {"preset": "ultrafast", "crf": "20", "x264-params": "stitchable=1"}
VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "row-mt": "1"}


@dataclass(frozen=True)
class OutputFormat:
    name: str  # the API's outputFormat value
    extension: str  # without the dot
    content_type: str
    muxer: str
    video_codec: str
    audio_codec: str
    copy_video: frozenset[str]  # codecs the container takes as they are
    copy_audio: frozenset[str]

    @property
    def video_options(self) -> dict[str, str]:
        return dict(VP9_OPTIONS if self.video_codec == "libvpx-vp9" else H264_OPTIONS)

    @property
    def mux_options(self) -> dict[str, str]:
        # bitexact: no random segment UIDs in WebM and no version strings in the file.
        options = {"fflags": "+bitexact"}
        if self.muxer in ("mp4", "mov"):
            options["movflags"] = "+faststart"  # index first, so a browser plays while loading
        return options


_MP4 = frozenset({"h264", "hevc", "av1"})
FORMATS = {
    "MP4": OutputFormat("MP4", "mp4", "video/mp4", "mp4", "libx264", "aac", _MP4,
                        frozenset({"aac", "mp3"})),
    "MOV": OutputFormat("MOV", "mov", "video/quicktime", "mov", "libx264", "aac",
                        _MP4 | {"prores"}, frozenset({"aac"})),
    "WEBM": OutputFormat("WEBM", "webm", "video/webm", "webm", "libvpx-vp9", "libopus",
                         frozenset({"vp8", "vp9", "av1"}), frozenset({"opus", "vorbis"})),
}
# outputFormat -> file extension
EXTENSIONS = {name: fmt.extension for name, fmt in FORMATS.items()}
_BY_SUFFIX = {".mp4": "MP4", ".m4v": "MP4", ".mov": "MOV", ".webm": "WEBM"}


def format_for_file(out: Path, name: str | None = None) -> OutputFormat:
    """The format named `name`, else the one `out`'s extension stands for."""
    key = name.upper() if name else _BY_SUFFIX.get(Path(out).suffix.lower(), "")
    if key not in FORMATS:
        shown = name or Path(out).name
        raise ValueError(f"no film format for {shown!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[key]


def open_output(path: Path, fmt: OutputFormat) -> OutputContainer:
    # PyAV is imported here, not at the top: the language phase reads the table above
    # without loading FFmpeg.
    import av

    return av.open(str(path), "w", format=fmt.muxer, options=fmt.mux_options)
