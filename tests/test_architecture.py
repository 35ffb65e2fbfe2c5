"""The layout is the architecture: docs/architecture.md's table matches the tree, imports go
one way between phases, and no module imports one that imports it back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipeline"
DOC = ROOT / "docs" / "architecture.md"
_ROW = re.compile(r"^\| `(?P<phase>[a-z_]+)(?:/|\.py)` \|(?:[^|]*\|){2}(?P<deps>[^|]*)\|$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Imports under `if TYPE_CHECKING:` are for the type checker; they do not run."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for child in ast.walk(node))
    return skip


def _exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _targets(path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("pipeline")]
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("pipeline"):
        return []
    return [f"{target}.{a.name}" if _exists(f"{target}.{a.name}") else target
            for a in node.names]


def import_graph() -> nx.DiGraph:
    """Module -> module, for every import that runs (at the top or inside a function)."""
    graph = nx.DiGraph()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        graph.add_node(name)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                graph.add_edges_from((name, target) for target in _targets(path, node))
    return graph


def phase_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pipeline"


def documented_phases() -> dict[str, set[str]]:
    """Each row of the table in docs/architecture.md: phase -> the phases it may import."""
    rows: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        found = _ROW.match(line.strip())
        if found:
            deps = found["deps"].strip()
            names = set(re.findall(r"`([a-z_]+)", deps))
            rows[found["phase"]] = {"*"} if deps == "everything" else names
    return rows


def test_no_module_imports_one_that_imports_it_back() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == []


def test_every_phase_in_the_tree_is_in_docs_architecture_and_back() -> None:
    tree = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    tree |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert set(documented_phases()) == tree


@pytest.mark.parametrize("phase", sorted(documented_phases()))
def test_a_phase_imports_only_what_docs_architecture_allows(phase: str) -> None:
    allowed = documented_phases()[phase]
    if "*" in allowed:
        return
    used = {(phase_of(b), b, a) for a, b in import_graph().edges if phase_of(a) == phase}
    wrong = sorted(f"{a} imports {b}" for target, b, a in used
                   if target not in allowed | {phase, "pipeline"})
    assert wrong == []


def test_no_module_grows_past_400_lines() -> None:
    """A module past 400 lines is doing more than one job; split it by job, not by size."""
    long = sorted(f"{p.relative_to(ROOT)}: {n} lines" for p in PACKAGE.rglob("*.py")
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400)
    assert long == []
