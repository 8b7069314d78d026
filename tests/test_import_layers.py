"""The house has no circles, and imports go the way docs/ARCHITECTURE.md says.

Imports are read from the code (every `import` statement, inside functions and under
`TYPE_CHECKING` too), resolved to the project's own modules, and checked for cycles and
against the "Import direction" tables, which this test reads from the document itself.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Where each importable root lives: the apps run with their own folder on the path, the
# local CLI with local/, the stack with infra/.
PACKAGES = {
    "chalicelib": ROOT / "chalicelib",
    "magpie": ROOT / "local" / "magpie",
    "magpie_stack": ROOT / "infra" / "magpie_stack",
    "e2e": ROOT / "e2e",
    "magpie_localstack": ROOT / "e2e" / "localstack_ext" / "magpie_localstack",
    "bench": ROOT / "bench",
}
MODULES = {
    "app": ROOT / "app.py",
    "ingress.app": ROOT / "ingress" / "app.py",
    "responders.app": ROOT / "responders" / "app.py",
    "egress.app": ROOT / "egress" / "app.py",
    "infra.app": ROOT / "infra" / "app.py",
}
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def project_modules(packages: Mapping[str, Path], modules: Mapping[str, Path]) -> dict[str, Path]:
    found = dict(modules)
    for name, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The project modules `name` imports: `from a import b` is `a.b` when b is a module."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                named.add(submodule if submodule in known else base)
    resolved = set()
    for target in named:
        while target and target not in known:  # `import a.b.c` of a name in a.b
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other round a loop (Tarjan's strongly
    connected components, iterative so a deep chain cannot overflow the stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in graph.get(node, ()):
                    found.append(sorted(group))
    return found


@dataclass(frozen=True)
class Layers:
    order: list[tuple[str, list[str]]]  # (layer, module patterns), first match wins
    may_import: dict[str, set[str]]
    exceptions: set[tuple[str, str]]  # (importer, imported) allowed against the table

    def layer_of(self, module: str) -> str:
        for layer, patterns in self.order:
            if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
                return layer
        raise LookupError(f"{module} is in no layer of docs/ARCHITECTURE.md")

    def violations(self, graph: Mapping[str, set[str]]) -> list[str]:
        wrong = []
        for importer, imported in sorted((a, b) for a, deps in graph.items() for b in deps):
            mine, theirs = self.layer_of(importer), self.layer_of(imported)
            if theirs not in self.may_import[mine] and (importer, imported) not in self.exceptions:
                wrong.append(f"{importer} ({mine}) imports {imported} ({theirs})")
        return wrong


def _table_after(text: str, heading: str, first_column: str) -> list[list[str]]:
    start = text.index(heading)
    header = text.index(f"| {first_column} |", start)
    rows = []
    for line in text[header:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell) or [part.strip() for part in cell.split(",")]


def read_layers(document: str) -> Layers:
    rules = _table_after(document, "### Import direction", "layer")
    exceptions = _table_after(document, "### Import direction", "importer")
    return Layers(
        order=[(layer, _names(modules)) for layer, modules, _ in rules],
        may_import={layer: set(_names(allowed)) for layer, _, allowed in rules},
        exceptions={(_names(a)[0], _names(b)[0]) for a, b, _ in exceptions},
    )


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(project_modules(PACKAGES, MODULES))


@pytest.fixture(scope="module")
def layers() -> Layers:
    return read_layers(ARCHITECTURE.read_text())


def test_no_module_imports_itself_round_a_loop(graph):
    assert len(graph) > 140  # the whole project was read, not an empty folder
    assert cycles(graph) == []


def test_every_import_goes_the_way_the_architecture_says(graph, layers):
    assert layers.violations(graph) == []


def test_every_allowed_exception_is_still_an_import(graph, layers):
    """An exception that no longer happens is taken out of the document's list."""
    gone = [pair for pair in layers.exceptions if pair[1] not in graph.get(pair[0], set())]
    assert gone == []


def test_every_module_is_in_a_layer(graph, layers):
    for module in graph:
        layers.layer_of(module)


# --- the checker itself, on a made-up package --------------------------------------------


def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for relative, source in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return project_modules({"pkg": root / "pkg"}, {})


def test_the_checker_finds_a_loop_hidden_inside_a_function(tmp_path):
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg import b\n",
            "b.py": "def late():\n    from pkg.c import thing\n",
            "c.py": "from . import a\nthing = 1\n",
            "d.py": "import pkg.a\n",
        },
    )
    assert cycles(import_graph(modules)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_checker_finds_a_loop_under_type_checking_and_through_relative_imports(tmp_path):
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "sub/__init__.py": "",
            "sub/x.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..y import Y\n"
            ),
            "y.py": "from pkg.sub.x import X\n",
        },
    )
    assert cycles(import_graph(modules)) == [["pkg.sub.x", "pkg.y"]]


def test_the_checker_passes_a_package_without_loops(tmp_path):
    modules = write_package(
        tmp_path, {"__init__.py": "", "a.py": "import pkg.b\n", "b.py": "import json\n"}
    )
    assert import_graph(modules) == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert cycles(import_graph(modules)) == []


DOCUMENT = """
### Import direction

| layer | modules | may import |
|---|---|---|
| ports | `pkg.ports` | shared |
| shared | `pkg` | shared |
| domain | `pkg.*` | domain, ports, shared |

| importer | imports | what it takes |
|---|---|---|
| `pkg.old` | `pkg.ports` | nothing |
"""


def test_the_checker_reports_an_import_against_the_table(tmp_path):
    modules = write_package(
        tmp_path,
        {"__init__.py": "", "ports.py": "import pkg.flow\n", "flow.py": "import pkg.ports\n"},
    )
    layers = read_layers(DOCUMENT)
    graph = import_graph(modules)
    assert layers.violations(graph) == ["pkg.ports (ports) imports pkg.flow (domain)"]
    assert cycles(graph) == [["pkg.flow", "pkg.ports"]]
    assert layers.exceptions == {("pkg.old", "pkg.ports")}
