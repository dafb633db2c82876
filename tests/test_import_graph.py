"""The intra-package import graph of nnbook has no cycle, and imports flow one way.

Every module under ``nnbook/`` is parsed with :mod:`ast` (nothing is imported);
each ``import nnbook.x``, ``from nnbook.x import y``, ``from . import x`` and
``from .x import y`` -- at module level *and* inside functions -- is an edge.
``nnbook/__init__.py`` is left out: it imports everything by design.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "nnbook"

# The lead is untangling this one (Conv2D's module, the model registry and LeNet-5).

# Drawing and widget code lives in nnbook.explorers (and the two benchmark-report modules).
DRAWING_ALLOWED = ("nnbook.explorers", "nnbook.kernels.report", "nnbook.bench.report")
DRAWING_PACKAGES = ("matplotlib", "ipywidgets", "IPython")


def _modules():
    """{dotted name: path} for every module of the package except nnbook/__init__.py."""
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    mods.pop("nnbook")
    return mods


def _package_of(name, path):
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(name, path):
    """(imported dotted name, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    pkg = _package_of(name, path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno


def import_graph():
    """{module: {imported module: first line}} restricted to nnbook's own modules."""
    mods = _modules()
    graph = {m: {} for m in mods}
    for name, path in mods.items():
        for target, names, line in _imports(name, path):
            if not (target == "nnbook" or target.startswith("nnbook.")):
                continue
            hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in mods]
            if len(hits) < len(names) or not names:    # some names are attributes of target
                hits.append(target)
            for t in hits:
                # the longest prefix that is one of our modules (nnbook itself is left out)
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    graph[name].setdefault(t, line)
    return graph


def strongly_connected(graph):
    """Tarjan's algorithm: the components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def a_cycle(graph, comp):
    """One cycle inside a strongly connected component, as 'a:line -> b:line -> ... -> a'."""
    start = min(comp)
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in comp)
        back = [w for w in nxt if w in path]
        if back:
            cyc = path[path.index(back[0]):] + [back[0]]
            break
        w = next(w for w in nxt if w not in seen)
        path.append(w)
        seen.add(w)
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cyc, cyc[1:])) + f" -> {cyc[-1]}"


def _describe(graph, comps):
    return "\n".join(f"cycle among {sorted(c)}:\n    {a_cycle(graph, c)}" for c in comps)


def test_no_import_cycle():
    graph = import_graph()
    comps = strongly_connected(graph)
    assert not comps, "import cycle(s) in nnbook:\n" + _describe(graph, comps)


def test_graph_sees_function_level_imports():
    # the parser itself: data and cli are linked only by imports inside functions
    graph = import_graph()
    assert "nnbook.data" in graph["nnbook.cli"]
    assert "nnbook.doctor" in graph["nnbook.cli"]
    assert "nnbook.functional" in graph["nnbook.layers"]
    assert "nnbook.autodiff" in graph["nnbook.explorers.autodiff"]


def test_only_init_and_cli_import_explorers():
    graph = import_graph()
    bad = sorted(m for m, deps in graph.items()
                 if not m.startswith(("nnbook.explorers", "nnbook.cli"))
                 and any(d.startswith("nnbook.explorers") for d in deps))
    assert not bad, f"modules importing nnbook.explorers (imports must flow one way): {bad}"


@pytest.mark.parametrize("name", sorted(n for n in _modules() if not n.startswith(DRAWING_ALLOWED)))
def test_no_drawing_code_outside_explorers(name):
    path = _modules()[name]
    found = sorted({(t, line) for t, _, line in _imports(name, path)
                    if t.split(".")[0] in DRAWING_PACKAGES})
    assert not found, (f"{name} imports drawing/widget packages (move the code to "
                       f"nnbook.explorers): {found}")


def test_import_nnbook_loads_no_drawing_package():
    import subprocess
    import sys
    code = ("import sys, nnbook; nnbook.explorers; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'ipywidgets'}))")
    code_plain = code.replace(" nnbook.explorers;", "")
    out = subprocess.run([sys.executable, "-c", code_plain], capture_output=True, text=True,
                         check=True, cwd=ROOT.parent).stdout.strip()
    assert out == "[]", f"import nnbook loaded {out}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT.parent).stdout.strip()
    assert out == "[]", f"nnbook.explorers loaded {out} before any explorer was used"
