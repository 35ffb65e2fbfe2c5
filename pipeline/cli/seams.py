"""The seams command: how well every handover of a storyboard's films holds, measured."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from ..errors import ExitCode, StoryreelError
from .common import compile_file, reports_errors


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print the measures as JSON: thresholds, seams[{source, frame, target, "
                   "position, psnr, ssim, delta_e, sharpness, failures}], chains[{shots, "
                   "drift, hops}] and failed.")
@click.option("--check", is_flag=True,
              help="Exit 1 when a seam or a chain is below the storyboard's thresholds "
                   "(for CI).")
@click.option("--allow-outside", is_flag=True,
              help="Allow local image files outside the storyboard's folder.")
@reports_errors
def seams(file: str, as_json: bool, check: bool, allow_outside: bool) -> None:
    """Measure every seam of every variant: the frame a shot handed over against the frame
    the next shot made from it (PSNR, SSIM, delta E, and how sharp the handed frame is), and
    each chain's colour drift from its first frame to its last, hop by hop.

    \b
    storyreel seams story.yaml
    storyreel seams story.yaml --check     # exit 1 below continuity: {min_psnr: 30, ...}

    Reads the cache of a finished run; frames come from the clips as they go into the film
    (graded where a shot holds its colour). Thresholds: continuity.min_psnr (default 30 dB),
    min_ssim, max_delta_e and max_drift at the top of the storyboard.
    """
    from ..run.seams import measure_seams
    from ..store import ObjectStore, store_root_for

    compiled = compile_file(file, allow_outside)
    result = measure_seams(compiled, ObjectStore(store_root_for(compiled.board.path)))
    if as_json:
        from ..report.seams import seams_json

        click.echo(seams_json(result))
    else:
        from ..report.seams import print_seams

        print_seams(result, Console(highlight=False, width=None if sys.stdout.isatty() else 160))
    if check and result.failed:
        raise StoryreelError("seams below the storyboard's thresholds (see above)",
                             hint="raise the quality of those shots, use frame: best or "
                                  "continuity: {color: match}, or relax the thresholds",
                             exit_code=ExitCode.FAILED)
