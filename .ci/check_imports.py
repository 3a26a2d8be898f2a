"""The import contract of ``rag/``: no circles, and no import from a lower floor to a higher one.

    python .ci/check_imports.py            # the repository's rag/ (exit 1 on a broken contract)
    python .ci/check_imports.py --root DIR # the rag/ package under DIR (the tests use a made-up one)

Floors, lowest first (a module may import its own floor and the floors below it):

    0  rag, rag.errors, rag.settings, rag.types, rag.text, rag.threads   what every stage shares
    1  rag.index        where units are kept and found again (embedders, the stores)
    2  rag.ingest       reading documents into units (it writes them through rag.index)
    3  rag.answer       answering a question (it reads through rag.index, cuts text as rag.ingest does)
    4  rag.engine       the one object that wires the stages together
    5  rag.evaluation   scoring answers (it drives the engine)
    6  rag.cli, rag.__main__   the command line

``rag`` never imports ``server``. Every import counts, also one inside a function (a
"lazy" import is still a dependency) and one only for type checking. Circles are
looked for among modules: ``a`` imports ``b`` and ``b`` imports ``a``, however long
the way round.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

FLOORS = (
    ("rag", "rag.errors", "rag.files", "rag.settings", "rag.types", "rag.text", "rag.threads"),
    ("rag.index",),
    ("rag.ingest",),
    ("rag.answer",),
    ("rag.engine",),
    ("rag.evaluation",),
    ("rag.cli", "rag.__main__"),
)
FORBIDDEN = ("server",)  # packages rag must never import


def modules(root: Path) -> dict[str, Path]:
    """Every module of the ``rag`` package under ``root``, by dotted name."""
    out = {}
    for path in sorted((root / "rag").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """The modules ``name`` imports (rag's own and the forbidden ones), with their lines."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*head, base] if base else head)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in known else base, node.lineno))
    return [(target, line) for target, line in found
            if target in known or target.split(".")[0] in FORBIDDEN]


def floor(name: str) -> int:
    best, level = -1, -1
    for i, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    return level


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def problems(root: Path) -> list[str]:
    known = modules(root)
    out: list[str] = []
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        here = floor(name)
        if here < 0:
            out.append(f"{path.relative_to(root)}: {name} is on no floor (add it to FLOORS in .ci/check_imports.py)")
        for target, line in imports(name, path, known):
            where = f"{path.relative_to(root)}:{line}"
            if target.split(".")[0] in FORBIDDEN:
                out.append(f"{where}: {name} imports {target} (rag never imports {target.split('.')[0]})")
                continue
            if target == name or name.startswith(target + ".") or target == "rag" and here >= 0:
                continue  # a package's own __init__ or the top package: nothing to check
            graph.setdefault(name, set()).add(target)
            there = floor(target)
            if there > here >= 0:
                out.append(f"{where}: {name} (floor {here}) imports {target} (floor {there}), a higher floor")
    for group in cycles(graph):
        out.append("import circle among: " + ", ".join(group))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    found = problems(args.root)
    for line in found:
        print(line)
    count = len(modules(args.root))
    print(f"import contract: {count} modules, {len(found)} problem(s)" if found
          else f"import contract: {count} modules, no circle, no upward import")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
