"""The media phase: clip files in; facts, frames and the stitched film out (PyAV).

`probe` says what a clip is, `frames` takes one of its frames, `clip` reads a clip onto the
film's grid, and `stitch` writes the film from spans of clips (`timeline`) by stream copy
(`copy`), a re-encode (`encode`) or a splice of both around crossfades and cuts (`splice`),
with its sound (`sound`). `metrics`, `colour`, `focus` and `grade` measure and correct
continuity. `formats` is the one table of output containers. This package's own import loads nothing: modules are
imported where they are used, so the language phase can read `formats` without FFmpeg.
"""
