"""The review command: serve the studio for a storyboard, or export its pages to a folder."""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path

import click

from ..errors import UsageError
from .common import reports_errors

DEFAULT_PORT = 8642


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help=f"Port to listen on (default {DEFAULT_PORT}, or any free port when that "
              "one is taken; 0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Keep 127.0.0.1 unless you mean to share the studio "
              "(anyone who can reach it can see your takes).")
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
@click.option("--backend", type=click.Choice(["simulator", "runware"]), default="simulator",
              show_default=True, help="What Run on the page renders with: the embedded "
              "simulator, or Runware with RUNWARE_API_KEY (the page asks before spending).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="Write the pages, posters, picked clips and films into DIR (opens from "
              "file://, no server) and exit.")
@reports_errors
def review(file: str, port: int | None, host: str, no_browser: bool, backend: str,
           export_dir: Path | None) -> None:
    """Review a storyboard in the browser: every take side by side, every seam, the films,
    what was spent and what the next run would cost.

    \b
    storyreel review story.yaml                 serve the studio and open it
    storyreel review story.yaml --export out/   a folder to send: open out/index.html

    In the studio, Pick writes `pick: N` into the storyboard and Another take a new `seed`
    (nothing else in the file changes: comments and layout stay), then the page shows what
    the next run would render and what it would cost. Run renders from the page with the
    --backend chosen here; runs started from the command line show up live too, and the
    page follows the storyboard when an editor saves it.
    """
    path = Path(file)
    if not path.is_file():
        raise UsageError(f"file not found: {file}")
    if export_dir is not None:
        _export(path, file, export_dir)
        return
    if backend == "runware" and not os.environ.get("RUNWARE_API_KEY", "").strip():
        raise UsageError("--backend runware: RUNWARE_API_KEY is not set",
                         hint="export RUNWARE_API_KEY=<your key>, or review with the simulator")
    _serve(path, file, host, port, backend, not no_browser)


def _export(path: Path, file: str, out: Path) -> None:
    from ..store import ObjectStore, store_root_for
    from ..studio.board import BoardInputs, build_board
    from ..studio.export import export_board

    board = build_board(path, file, BoardInputs())
    pages = export_board(board, ObjectStore(store_root_for(path)), out)
    click.echo(f"exported {len(pages)} page{'s' if len(pages) != 1 else ''} to {out}/: "
               f"open {pages[0]}")


def _serve(path: Path, file: str, host: str, port: int | None, backend: str,
           browser: bool) -> None:
    from ..studio.review import ReviewConfig
    from ..studio.server import bind, serve

    if port is None:
        port = DEFAULT_PORT
        try:
            bind(host, port).close()
        except UsageError:
            port = 0  # the usual port is taken (another studio?): any free one will do

    def ready(url: str) -> None:
        click.echo(f"storyreel studio for {file} at {url}")
        click.echo(f"  Run renders with: {backend}; Ctrl-C stops the studio")
        if browser:
            webbrowser.open(url)

    try:
        serve(ReviewConfig(path, file, backend), host, port, ready=ready)
    except KeyboardInterrupt:
        pass
    click.echo("studio stopped")
