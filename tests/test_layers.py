"""The package's rooms import only downward: a walk over every import, function-local and TYPE_CHECKING ones too.

Each module belongs to a layer (:data:`LAYERS`, bottom first). An import of ``medsyn.b`` from ``medsyn.a`` must
point to the same layer or a lower one, the imports must form no circle, and no module may take another's private
(underscore) names. A new module fails here until it is given a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medsyn"

# Bottom first. A module's layer is that of the longest prefix listed here.
LAYERS: list[tuple[str, ...]] = [
    ("medsyn", "medsyn.errors", "medsyn.paths", "medsyn.config"),
    (
        "medsyn.icd10",
        "medsyn.text",
        "medsyn.data",
        "medsyn.corpus",
        "medsyn.extract",
        "medsyn.models",
        "medsyn.demographics",
        "medsyn.hub",
        "medsyn.cards",
    ),
    ("medsyn.kg",),
    ("medsyn.sampling", "medsyn.prompts", "medsyn.backends", "medsyn.filters", "medsyn.plots"),
    ("medsyn.generator", "medsyn.job", "medsyn.sharding", "medsyn.writer"),
    ("medsyn.pipeline", "medsyn.expand", "medsyn.eval", "medsyn.finetune", "medsyn.release"),
    ("medsyn.cli", "medsyn.space", "medsyn.serving", "medsyn.__main__"),
]


def layer_of(module: str) -> int:
    best, layer = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, layer = len(name), i
    if layer is None:
        raise AssertionError(f"{module} has no layer in tests/test_layers.py LAYERS; give it one")
    return layer


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> list[tuple[str, list[str], int]]:
    """``(module, names taken, line)`` for every import of a medsyn module in ``path``, wherever it stands."""
    me = module_name(path)
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "medsyn"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_pkg else me.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "medsyn":
                continue
            names = [a.name for a in node.names]
            # `from medsyn import kg` imports the module medsyn.kg
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            if subs:
                found += [(s, [], node.lineno) for s in subs]
            else:
                found.append((target, names, node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, list[str], int]]]:
    mods = modules()
    known = set(mods)
    return {name: [(t, n, line) for t, n, line in imports(path, known) if t != name] for name, path in mods.items()}


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


# Arrows allowed to run upward while a move is under way (none today); the test fails on any arrow not listed here,
# and on a listed one that is gone.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def upward_imports() -> set[tuple[str, str]]:
    return {
        (src, target)
        for src, targets in graph().items()
        for target, _, _ in targets
        if target != "medsyn" and layer_of(target) > layer_of(src)  # `medsyn` itself: the package's face
    }


def test_no_import_runs_upward():
    new = sorted(upward_imports() - KNOWN_UPWARD)
    assert not new, "imports that run upward:\n" + "\n".join(f"{s} imports {t}" for s, t in new)
    gone = KNOWN_UPWARD - upward_imports()
    assert not gone, f"{sorted(gone)} no longer run upward: remove them from KNOWN_UPWARD"


def test_no_circles():
    known = set(modules())
    edges = {src: {t for t, _, _ in targets if t in known} for src, targets in graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    # the known upward arrows close circles through medsyn.job; any other circle fails
    circles = [c for c in circles if not any(f"{s} -> {t}" in c for s, t in KNOWN_UPWARD)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_no_private_names_taken_from_other_modules():
    taken = [
        f"{src}:{line} takes {name} from {target}"
        for src, targets in graph().items()
        for target, names, line in targets
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not taken, "private names used outside their module:\n" + "\n".join(taken)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from medsyn.kg import load_graph\n", ["medsyn.kg"]),
        ("def f():\n    from medsyn.plots import plot_graph_stats\n", ["medsyn.plots"]),
    ],
)
def test_the_walk_sees_function_local_imports(tmp_path, source, expected):
    path = PACKAGE / "__probe_layers__.py"
    try:
        path.write_text(source, encoding="utf-8")
        assert [t for t, _, _ in imports(path, set(modules()))] == expected
    finally:
        path.unlink()
