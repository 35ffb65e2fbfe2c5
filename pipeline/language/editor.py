"""Editor hints: the model catalog in; the parts of the storyboard schema that let an editor
offer the model ids and, per model, its request fields, out.

They live in `schemas/storyboard.schema.json` under `$defs` entries whose names start with
`editor`, referenced where a model is named (the top-level `model`, a shot's or a scene's
`model`, `variants.model`) and where its fields are written. storyreel's own check ignores
them (`schema.py` reads each as `true`): a shot's fields are checked against its model after
defaults and templates, with better words. A field's value may always be a template.

After adding or changing a model file, write them again (a test fails until then):

    python -m pipeline.language.editor
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .catalog import Catalog, ModelSpec, load_catalog, schemas_dir

PREFIX = "editor"
TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%", "description": "a Jinja template"}
_GLUE = ("taskType", "taskUUID", "model", "inputs")  # inputs: the storyboard's own images


def slug(air: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", air).strip("-")


def editor_defs(catalog: Catalog) -> dict[str, Any]:
    """Every `$defs` entry the editor hints need, by name."""
    defs: dict[str, Any] = {
        "editorModelIds": {"enum": catalog.ids,
                           "description": "a model's AIR id; storyreel models lists them"},
        "editorShotFields": {"allOf": [_when_model(air) for air in catalog.ids]},
        "editorBoardFields": {"allOf": [_board_model(air) for air in catalog.ids]},
    }
    for air in catalog.ids:
        defs[f"editorModel-{slug(air)}"] = _fields(catalog.get(air))
    return defs


def _when_model(air: str) -> dict[str, Any]:
    return {"if": {"required": ["model"], "properties": {"model": {"const": air}}},
            "then": {"$ref": f"#/$defs/editorModel-{slug(air)}"}}


def _board_model(air: str) -> dict[str, Any]:
    """The file's model gives its fields to the defaults and to shots without a model."""
    fields = {"$ref": f"#/$defs/editorModel-{slug(air)}"}
    shots = {"additionalProperties": {"if": {"not": {"required": ["model"]}}, "then": fields}}
    scene = {"properties": {"defaults": fields, "shots": shots}}
    return {"if": {"required": ["model"], "properties": {"model": {"const": air}}},
            "then": {"properties": {"defaults": fields, "shots": shots,
                                    "scenes": {"items": scene}}}}


def _fields(spec: ModelSpec) -> dict[str, Any]:
    props = spec.schema.get("properties", {})
    frames = " and ".join(spec.frames) or "no"
    return {"description": f"{spec.name} ({spec.air}): {frames} frame images; sound: "
                           f"{spec.sound.describe()}",
            "properties": {name: _templatable(sub) for name, sub in props.items()
                           if name not in _GLUE}}


def _templatable(sub: Any) -> Any:
    """The field's schema, or a template in its place; objects are walked into."""
    if not isinstance(sub, Mapping):
        return sub
    if sub.get("type") == "object" and "properties" in sub:
        return {**sub, "properties": {k: _templatable(v) for k, v in sub["properties"].items()}}
    return {"anyOf": [dict(sub), TEMPLATE]}


def write_editor_defs() -> None:
    """Rewrite the editor entries of schemas/storyboard.schema.json from the catalog."""
    path = schemas_dir() / "storyboard.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    defs = {k: v for k, v in schema["$defs"].items() if not k.startswith(PREFIX)}
    schema["$defs"] = {**defs, **editor_defs(load_catalog())}
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_editor_defs()
