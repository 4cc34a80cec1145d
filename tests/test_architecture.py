"""The shape docs/ARCHITECTURE.md describes, kept true: no import circle among core's modules (counting
imports inside functions), no Streamlit in core, and a run planned in one place."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_imports() -> dict[str, set[str]]:
    """Module -> the core modules it imports anywhere in its text (top or inside a function)."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / "core").rglob("*.py")}
    edges = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files]
                found.update(subs if len(subs) == len(node.names) else [base, *subs])
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        # a module's own package (its __init__ runs first anyway) is not an edge
        edges[name] = {m for m in found if m in files and m != name and not name.startswith(m + ".")}
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                out.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_in_core_counting_imports_inside_functions():
    edges = project_imports()
    assert "core.training" in edges and "core.plan" in edges["core.training"]      # the walk sees them
    assert circles(edges) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_never_imports_streamlit():
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_a_run_is_keyed_only_by_its_plan():
    """RunConfig.key is called by core.plan alone (and by config's own training_key); a class's own
    `self.key(...)` (the parameter counts' cache) is another key."""
    callers = []
    for path in list((ROOT / "core").rglob("*.py")) + list((ROOT / "pages").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "key" \
                    and node.args and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "self"):
                callers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(callers)) == ["core/config.py", "core/plan.py"]
