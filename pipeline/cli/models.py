"""The models command: the model catalog in; a table of every model, or one model's every
field and rule, out. Nothing is read but the model files."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from ..language.catalog import load_catalog
from ..report.models import model_detail, models_json, models_table
from .common import reports_errors


@click.command()
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: a summary of every model, or one model's file (its request "
                   "schema with x-storyreel: rules, sizes, prices, capabilities, sources).")
@reports_errors
def models(model: str | None, as_json: bool) -> None:
    """List the models a shot may use, or show one model's every field and rule.

    \b
    storyreel models                  durations, sizes, frame inputs, sound, price per second
    storyreel models google:3@3       every request field, size, rule, price and source

    A model's `frames` say what it can chain: `first` takes a `from` (another shot's frame as
    its first frame); `first + last` also takes a last frame, so it can bridge two shots.
    """
    catalog = load_catalog()
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if model is None:
        if as_json:
            click.echo(models_json(catalog))
        else:
            console.print(models_table(catalog))
        return
    spec = catalog.get(model)
    if as_json:
        click.echo(json.dumps(spec.schema, indent=2, ensure_ascii=False))
    else:
        console.print(model_detail(spec))
