"""Models report: the model catalog in; a table of every model, one model's every field and
rule, or JSON, out.

The table says what matters when choosing a model for a shot: its lengths, sizes, which
frames it takes (so what it can chain from and to), whether it makes sound and what turns
it on, and its price per second. The detail of one model adds every request field with its
type, range and default, the size table, the rules checked before spending, the fields it
does not have and why, and the decisions taken on uncertain facts with their sources.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..language.catalog import Catalog, ModelSpec

# A model file's JSON Schema and its x-storyreel extensions: JSON, whose values are any JSON.
Json = Mapping[str, Any]

FRAMES = {("first", "last"): "first + last", ("first",): "first", (): "none"}


def durations(spec: ModelSpec) -> str:
    """'5, 8' or '1.2-12' seconds, from the duration field's schema."""
    field = spec.schema.get("properties", {}).get("duration", {})
    if "enum" in field:
        return ", ".join(f"{v:g}" for v in field["enum"])
    low, high = field.get("minimum"), field.get("maximum")
    return f"{low:g}-{high:g}" if low is not None and high is not None else "?"


def sizes(spec: ModelSpec) -> str:
    table = spec.sizes["table"]
    count = sum(len(row) for row in table.values())
    return f"{', '.join(table)} ({count} size{'s' if count != 1 else ''})"


def sound(spec: ModelSpec) -> str:
    if spec.sound.mode != "switch":
        return spec.sound.describe()
    return ".".join(spec.sound.switch[-2:]) + (" (on)" if spec.sound.default else "")


def money(amount: float) -> str:
    """$0.10, $0.0598, $0.0374: cents always, and up to four decimals where they matter."""
    text = f"{amount:.4f}".rstrip("0")
    return "$" + (text + "0" * (2 - len(text.split(".")[1])))


def price(spec: ModelSpec) -> str:
    """'$0.10/s 720p, $0.15/s 1080p' (and with sound where it costs more), or 'unknown'."""
    prices = spec.price_list
    if not prices.known:
        return "unknown"
    order = list(spec.sizes["table"])

    def rates(sound: bool) -> list[tuple[str, float]]:
        found = prices.per_second(sound)
        return sorted(found.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)

    plain = ", ".join(f"{money(rate)}/s {res}" for res, rate in rates(False))
    if prices.with_audio is None:
        return plain
    loud = ", ".join(f"{money(rate)}/s {res}" for res, rate in rates(True))
    return f"{plain}; with sound {loud}"


def models_table(catalog: Catalog) -> Table:
    table = Table(title="models", title_justify="left")
    for column in ("model", "name", "seconds", "sizes", "frames", "sound", "price"):
        table.add_column(column)
    for air in catalog.ids:
        spec = catalog.get(air)
        table.add_row(air, spec.name, durations(spec), sizes(spec),
                      FRAMES.get(spec.frames, "+".join(spec.frames)), sound(spec), price(spec))
    return table


def models_json(catalog: Catalog) -> str:
    rows = [{"model": air, "name": spec.name, "fps": spec.fps, "durations": durations(spec),
             "sizes": {res: [f"{w}x{h}" for w, h in row]
                       for res, row in spec.sizes["table"].items()},
             "frames": list(spec.frames), "sound": spec.sound.describe(),
             "price_per_second": spec.price_list.per_second() or None,
             "price_per_second_with_sound": (spec.price_list.per_second(sound=True)
                                             if spec.price_list.with_audio else None)}
            for air, spec in ((a, catalog.get(a)) for a in catalog.ids)]
    return json.dumps(rows, indent=2, ensure_ascii=False)


# -- one model ----------------------------------------------------------------------------


def model_detail(spec: ModelSpec) -> RenderableType:
    ext = spec.schema.get("x-storyreel", {})
    return Group(_summary(spec, ext), _fields(spec), _size_table(spec), _rules(spec),
                 _prices(spec), _notes(ext))


def _summary(spec: ModelSpec, ext: Json) -> Text:
    images = ext.get("images")
    lines = [
        f"{spec.name} ({spec.air})",
        f"  frame rate {spec.fps} fps; default duration {spec.default_duration:g} s "
        f"(seconds: {durations(spec)})",
        f"  frame images: {FRAMES.get(spec.frames, '+'.join(spec.frames))}",
        f"  sound: {spec.sound.describe()}" + (f" ({spec.sound.note})" if spec.sound.note
                                                 else ""),
        f"  seed: {'yes' if spec.takes_seed else 'no: none is sent'}",
    ]
    if isinstance(images, Mapping):
        lines.append(f"  input images: {images['minSide']}-{images['maxSide']} px per side, "
                     f"up to {images['maxBytes'] / 2**20:g} MB, "
                     f"{', '.join(images.get('formats', []))}")
    return Text("\n".join(lines) + "\n")


def flatten_fields(schema: Json, prefix: str = ""
                   ) -> Iterator[tuple[str, Json, bool]]:
    """(dotted path, schema, required) of every field, nested objects walked into."""
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        nested = isinstance(sub, Mapping) and sub.get("type") == "object" and "properties" in sub
        if nested:
            yield from flatten_fields(sub, f"{path}.")
        else:
            yield path, sub, name in required


def describe_field(sub: Json) -> str:
    if "const" in sub:
        return f"= {sub['const']!r}"
    if "enum" in sub:
        shown = ", ".join(str(v) for v in sub["enum"][:8])
        return f"one of {shown}" + (f" (+{len(sub['enum']) - 8})" if len(sub["enum"]) > 8 else "")
    words = [str(sub.get("type", "array of images" if "items" in sub else "any"))]
    for key, word in (("minimum", ">="), ("maximum", "<="), ("minLength", "min length"),
                      ("maxLength", "max length"), ("minItems", "min items"),
                      ("maxItems", "max items")):
        if key in sub:
            words.append(f"{word} {sub[key]}")
    return " ".join(words)


def _fields(spec: ModelSpec) -> Table:
    table = Table(title="request fields", title_justify="left")
    for column in ("field", "values", "default", "required"):
        table.add_column(column)
    for path, sub, required in flatten_fields(spec.schema):
        default = sub.get("default")
        table.add_row(path, describe_field(sub), "" if default is None else json.dumps(default),
                      "yes" if required else "")
    for path, why in spec.absent.items():
        table.add_row(Text(path, style="dim"), Text(f"not taken: {why}", style="dim"), "", "")
    return table


def _size_table(spec: ModelSpec) -> Table:
    table = Table(title=f"sizes (default {spec.sizes['default']})", title_justify="left")
    table.add_column("resolution")
    table.add_column("width x height")
    for res, row in spec.sizes["table"].items():
        table.add_row(res, "  ".join(f"{w}x{h}" for w, h in row))
    return table


def _rules(spec: ModelSpec) -> Table:
    table = Table(title="rules checked before spending", title_justify="left")
    for column in ("rule", "level", "message", "hint, note and sources"):
        table.add_column(column)
    raw = {r["id"]: r for r in spec.schema.get("x-storyreel", {}).get("rules", [])}
    for rule in spec.rules:
        extra = raw.get(rule.id, {})
        more = [rule.hint or "", extra.get("note", ""),
                f"[{', '.join(extra['sources'])}]" if extra.get("sources") else ""]
        table.add_row(rule.id, "warning" if rule.warning else "error", rule.message,
                      "\n".join(m for m in more if m))
    return table


def _prices(spec: ModelSpec) -> Text:
    prices = spec.price_list
    lines = [f"price: {price(spec)} ({prices.currency})"]
    for label, rates in (("per clip", prices.plain), ("per clip with sound", prices.with_audio)):
        if rates is not None and rates.table:
            lines.append(f"  {label}: " + "; ".join(
                f"{res} " + ", ".join(f"{s} s ${p:g}" for s, p in row.items())
                for res, row in rates.table.items()))
    if prices.estimate:
        lines.append("  estimated: " + ", ".join(f"{a} as {b}" for a, b in prices.estimate.items()))
    if prices.note:
        lines.append(f"  {prices.note}")
    return Text("\n" + "\n".join(lines) + "\n")


def _notes(ext: Json) -> Text:
    decisions = [f"  {note['about']}: {note['decision']}"
                 + (f" [{', '.join(note['sources'])}]" if note.get("sources") else "")
                 for note in ext.get("notes", [])]
    sources = [f"  [{source['key']}] {source['what']}"
               + (f": {source['url']}" if source.get("url") else "")
               for source in ext.get("sources", [])]
    parts = [("decisions on uncertain facts", decisions), ("sources", sources)]
    return Text("\n".join(f"{title}:\n" + "\n".join(lines) for title, lines in parts if lines))
