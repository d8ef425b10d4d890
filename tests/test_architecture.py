"""The house rules of docs/architecture.md, read from the source with ``ast`` (nothing is imported).

The import graph of ``rsa_toolkit/`` and ``amalgamate/``: one node per module (a package is its ``__init__.py``), one
edge per import statement anywhere in a file (module level, inside functions, under ``if TYPE_CHECKING:``, in
``try``), absolute or relative. An import resolves to the most specific module of the project it names:
``from rsa_toolkit import distributed`` is an edge to ``rsa_toolkit.distributed``, ``from rsa_toolkit.scenes import
render`` an edge to the package ``rsa_toolkit.scenes`` when ``render`` is a name there, and a name a package exports
lazily (its ``_EXPORTS`` table, see rsa_toolkit/lazy.py) an edge to the module that defines it. The packages'
lazy ``_EXPORTS`` tables are edges too (the package depends on what it exports). Importing ``a.b.c`` also runs
``a/__init__`` and ``a/b/__init__``; those implicit edges are not counted (as in import-linter / grimp).

Every failure names the offending edges as ``file:line: importer -> imported``, or the cycle, or the file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rsa_toolkit", "amalgamate")
MAX_LINES = 400

CLI_MODULES = ("rsa_toolkit.cli", "amalgamate.cli", "rsa_toolkit.__main__", "amalgamate.__main__")
NETWORK_CODE = ("torch.nn", "rsa_toolkit.zoo", "rsa_toolkit.features", "rsa_toolkit.lab")


@dataclass(frozen=True)
class Edge:
    """One import: ``importer`` (a module of the project) imports ``imported`` (a module of the project, or an
    external dotted name as written), at ``line`` of ``path``; ``names`` are the names taken from it (``from ...
    import names``), ``candidates`` every dotted name the statement could denote (``from torch import nn`` is
    ``torch`` and ``torch.nn``)."""

    importer: str
    imported: str
    path: str
    line: int
    internal: bool
    names: tuple[str, ...] = ()
    candidates: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        taken = f" (import {', '.join(self.names)})" if self.names else ""
        return f"{self.path}:{self.line}: {self.importer} -> {self.imported}{taken}"


def within(name: str, prefix: str) -> bool:
    """``name`` is the module ``prefix`` or one inside it (``torch.nn.functional`` is within ``torch.nn``)."""
    return name == prefix or name.startswith(prefix + ".")


def is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def find_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file under ``root/<package>``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _lazy_exports(tree: ast.Module) -> tuple[dict[str, str], int]:
    """A package's ``_EXPORTS = {"submodule": "name name ..."}`` table as name -> submodule (relative), and its
    line."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and isinstance(node.value, ast.Dict):
            table = {}
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                    table.update(dict.fromkeys(str(value.value).split(), str(key.value)))
            return table, node.lineno
    return {}, 0


def read_graph(root: Path, packages: Iterable[str]) -> tuple[dict[str, Path], list[Edge]]:
    """Every module of ``packages`` under ``root`` and every import edge out of them."""
    packages = tuple(packages)
    modules = find_modules(root, packages)
    trees = {name: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for name, path in modules.items()}
    lazy, lazy_line = {}, {}
    for name, tree in trees.items():
        if modules[name].name == "__init__.py":
            lazy[name], lazy_line[name] = _lazy_exports(tree)

    def resolve(dotted: str) -> str | None:
        """The most specific module of the project that ``dotted`` names, None for an external name."""
        parts = dotted.split(".")
        if parts[0] not in packages:
            return None
        while parts and ".".join(parts) not in modules:
            parts.pop()
        return ".".join(parts) or None

    edges: dict[tuple[str, str, int], Edge] = {}  # one edge per statement and module imported, its names merged
    for importer, tree in trees.items():
        path = modules[importer].relative_to(root).as_posix()
        is_package = modules[importer].name == "__init__.py"

        def add(imported: str, line: int, names: tuple[str, ...] = (), candidates: tuple[str, ...] = ()) -> None:
            module = resolve(imported)
            key = (importer, module or imported, line)
            before = edges.get(key) or Edge(importer, module or imported, path, line, module is not None)
            edges[key] = Edge(importer, before.imported, path, line, before.internal, before.names + names,
                              before.candidates + (candidates or (imported,)))

        for submodule in dict.fromkeys(lazy.get(importer, {}).values()):
            add(f"{importer}.{submodule}", lazy_line[importer])
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    package_parts = importer.split(".") if is_package else importer.split(".")[:-1]
                    base_parts = package_parts[:len(package_parts) - (node.level - 1)]
                    base = ".".join([*base_parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if alias.name != "*" and full in modules:
                        add(full, node.lineno)
                    elif alias.name in lazy.get(base, {}):
                        add(f"{base}.{lazy[base][alias.name]}", node.lineno, (alias.name,))
                    else:
                        add(base, node.lineno, (alias.name,), (base, full))
    return modules, list(edges.values())


def find_cycles(edges: Iterable[Edge]) -> list[list[Edge]]:
    """One shortest cycle (as its edges) through each strongly connected component of more than one module, or of
    one module importing itself."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        if edge.internal:
            graph.setdefault(edge.importer, {}).setdefault(edge.imported, edge)
            graph.setdefault(edge.imported, {})

    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        components.append(component)

    cycles = []
    for component in components:
        first = min(component)
        previous: dict[str, str] = {}
        frontier = [first]
        while frontier and first not in previous:  # breadth first, back to ``first`` inside the component
            following = []
            for node in frontier:
                for child in sorted(graph[node]):
                    if child in component and child not in previous:
                        previous[child] = node
                        following.append(child)
            frontier = following
        path = [first]
        while len(path) == 1 or path[-1] != first:
            path.append(previous[path[-1]])
        path.reverse()
        cycles.append([graph[a][b] for a, b in zip(path, path[1:])])
    return sorted(cycles, key=lambda cycle: cycle[0].importer)


def describe_cycle(cycle: list[Edge]) -> str:
    chain = " -> ".join([cycle[0].importer, *(edge.imported for edge in cycle)])
    return chain + "\n" + "\n".join(f"    {edge}" for edge in cycle)


# --- the rules: each returns the offending edges ---------------------------------------------------------------------

def rsa_toolkit_importing_amalgamate(edges: Iterable[Edge]) -> list[Edge]:
    return [e for e in edges if within(e.importer, "rsa_toolkit") and within(e.imported, "amalgamate")]


def rsa_math_importing_network_code(edges: Iterable[Edge]) -> list[Edge]:
    return [e for e in edges if within(e.importer, "rsa_toolkit.rsa")
            and any(within(name, banned) for name in (e.imported, *e.candidates) for banned in NETWORK_CODE)]


def library_importing_cli(edges: Iterable[Edge]) -> list[Edge]:
    return [e for e in edges if not any(within(e.importer, cli) for cli in CLI_MODULES)
            and any(within(e.imported, cli) for cli in CLI_MODULES)]


def amalgamate_importing_private_rsa_toolkit(edges: Iterable[Edge]) -> list[Edge]:
    return [e for e in edges if within(e.importer, "amalgamate") and within(e.imported, "rsa_toolkit")
            and (within(e.imported, "rsa_toolkit.cli") or any(map(is_private, e.imported.split(".")))
                 or any(map(is_private, e.names)))]


def lab_imported_outside_cli_and_lab(edges: Iterable[Edge]) -> list[Edge]:
    return [e for e in edges if within(e.imported, "rsa_toolkit.lab")
            and not (within(e.importer, "rsa_toolkit.cli") or within(e.importer, "rsa_toolkit.lab"))]


RULES = {
    "rsa_toolkit never imports amalgamate": rsa_toolkit_importing_amalgamate,
    "rsa_toolkit.rsa imports no network code (torch.nn, rsa_toolkit.zoo, .features, .lab)":
        rsa_math_importing_network_code,
    "no library module imports a CLI module": library_importing_cli,
    "amalgamate imports only public rsa_toolkit names, and never rsa_toolkit.cli":
        amalgamate_importing_private_rsa_toolkit,
    "only rsa_toolkit.cli and rsa_toolkit.lab import rsa_toolkit.lab": lab_imported_outside_cli_and_lab,
}


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Path], list[Edge]]:
    return read_graph(ROOT, PACKAGES)


def test_the_graph_covers_both_packages(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    modules, edges = graph
    assert {"rsa_toolkit", "rsa_toolkit.rsa.rdm", "amalgamate", "amalgamate.cli"} <= set(modules)
    assert any(e.importer.startswith("amalgamate") and e.imported.startswith("rsa_toolkit") for e in edges)


def test_no_import_cycles(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    cycles = find_cycles(graph[1])
    if cycles:
        pytest.fail(f"{len(cycles)} import cycle(s):\n" + "\n".join(map(describe_cycle, cycles)), pytrace=False)


@pytest.mark.parametrize("rule", list(RULES))
def test_import_rule(rule: str, graph: tuple[dict[str, Path], list[Edge]]) -> None:
    offending = RULES[rule](graph[1])
    if offending:
        pytest.fail(f"{rule}; broken by:\n" + "\n".join(f"    {edge}" for edge in offending), pytrace=False)


def test_no_file_over_the_line_limit(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path in graph[0].values()}
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    if over:
        pytest.fail(f"files over {MAX_LINES} lines: " + ", ".join(f"{name} ({n})" for name, n in over.items()),
                    pytrace=False)


# --- the checker itself, on a made-up house ---------------------------------------------------------------------------

def _house(root: Path, files: dict[str, str]) -> list[Edge]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return read_graph(root, ("rsa_toolkit", "amalgamate"))[1]


def test_the_checker_sees_relative_function_level_and_lazy_imports_and_reports_cycles(tmp_path: Path) -> None:
    edges = _house(tmp_path, {
        "rsa_toolkit/__init__.py": '_EXPORTS: dict[str, str] = {"rsa.rdm": "compute_rdm"}\n',
        "rsa_toolkit/rsa/__init__.py": "",
        "rsa_toolkit/rsa/rdm.py": "def f():\n    from ..zoo import teachers\n",
        "rsa_toolkit/rsa/compare.py": "from torch import nn\nfrom . import rdm\n",
        "rsa_toolkit/zoo/__init__.py": "",
        "rsa_toolkit/zoo/teachers.py": "if True:\n    import rsa_toolkit.rsa.compare as c\n",
        "rsa_toolkit/cli/__init__.py": "",
        "rsa_toolkit/cli/_options.py": "from rsa_toolkit.lab.train import x\n",
        "rsa_toolkit/lab/__init__.py": "",
        "rsa_toolkit/lab/train.py": "from rsa_toolkit import compute_rdm\n",
        "amalgamate/__init__.py": "",
        "amalgamate/run.py": ("from rsa_toolkit.rsa.rdm import _helper, compute_rdm\nimport rsa_toolkit.cli._options\n"
                              "from rsa_toolkit.lab import train\n"),
    })
    assert {(e.importer, e.imported) for e in edges if e.internal} >= {
        ("rsa_toolkit", "rsa_toolkit.rsa.rdm"), ("rsa_toolkit.rsa.rdm", "rsa_toolkit.zoo.teachers"),
        ("rsa_toolkit.rsa.compare", "rsa_toolkit.rsa.rdm"), ("rsa_toolkit.zoo.teachers", "rsa_toolkit.rsa.compare"),
        ("rsa_toolkit.lab.train", "rsa_toolkit.rsa.rdm")}
    cycles = find_cycles(edges)
    assert [describe_cycle(c).splitlines()[0] for c in cycles] == [
        "rsa_toolkit.rsa.compare -> rsa_toolkit.rsa.rdm -> rsa_toolkit.zoo.teachers -> rsa_toolkit.rsa.compare"]
    assert "rsa_toolkit/rsa/rdm.py:2: rsa_toolkit.rsa.rdm -> rsa_toolkit.zoo.teachers" in describe_cycle(cycles[0])
    found = {rule: sorted(f"{e.importer} -> {e.imported}" for e in check(edges)) for rule, check in RULES.items()}
    assert list(found.values()) == [
        [],
        ["rsa_toolkit.rsa.compare -> torch", "rsa_toolkit.rsa.rdm -> rsa_toolkit.zoo.teachers"],
        ["amalgamate.run -> rsa_toolkit.cli._options"],
        ["amalgamate.run -> rsa_toolkit.cli._options", "amalgamate.run -> rsa_toolkit.rsa.rdm"],
        ["amalgamate.run -> rsa_toolkit.lab.train"],
    ]
