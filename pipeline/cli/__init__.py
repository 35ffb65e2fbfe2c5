"""The command line: argv -> one stage or another; the only place that exits.

Every `StoryreelError` is caught once, in `common.reports_errors`, printed with `render()` and
turned into its exit code (2 for anything wrong in the user's files or arguments). Each
phase's commands live in a module of their own: `language` (validate, plan, graph), `run`,
`seams`, `models`, `review` (the studio).
"""

from __future__ import annotations

import click

from ..errors import ExitCode
from . import language, models, review, run, seams


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="storyreel")
def main() -> None:
    """storyreel: declarative storyboards for AI video.

    A storyboard (YAML) lists shots: videoInference requests on Runware (PixVerse, Kling,
    Seedance, Veo, Hailuo, Vidu, Wan: any mix), plus `from` to chain the last frame of one
    shot into the next and `pick` to choose a take.

    \b
    storyreel validate story.yaml     check everything before a cent is spent
    storyreel plan story.yaml         what would be sent, why, and what it costs
    storyreel graph story.yaml        the shot graph as Mermaid or Graphviz
    storyreel run story.yaml          render the film (embedded simulator by default)
    storyreel seams story.yaml        how well each chained frame holds across its seam
    storyreel review story.yaml       see every take and seam in the browser, pick, run again
    storyreel simulate                serve the Runware-compatible simulator on 127.0.0.1
    storyreel models [ID]             the models: lengths, sizes, frames, sound, prices

    Exit codes: 0 ok, 1 a run or request failed, 2 something is wrong in your files or
    arguments (every problem is listed as file:line:col).
    """


def _add_commands() -> None:
    for command in (language.validate, language.plan, language.graph, run.run, seams.seams,
                    models.models, review.review):
        main.add_command(command)
    try:
        from ..simulator.serve import simulate_command
    except ImportError:
        pass
    else:
        main.add_command(simulate_command(), "simulate")


_add_commands()

__all__ = ["ExitCode", "main"]
