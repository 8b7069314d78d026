"""README's configuration table names every environment variable the code reads, and only those.

The code is read, not imported: every literal name passed to `os.environ` / `os.getenv`, to an
`env` mapping (`settings().env`, the fault plan's), or to one of `Settings`'s readers
(`_get`, `require`, `_int`, `_bool`, `_set`, `_provider`), resolving module constants and
loops over a module's dict of names. Scanned: what ships or runs the bot (chalicelib/, the
local runtime and the four apps). Not scanned: infra/ (it writes the functions' environment,
it reads none), bench/, scripts/ and tests/ (tools, not the product).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = [
    "chalicelib",
    "local/magpie",
    "app.py",
    "ingress/app.py",
    "responders/app.py",
    "egress/app.py",
]
SETTINGS_READERS = {"_get", "require", "_int", "_bool", "_set", "_provider"}
ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


def _is_environment(node: ast.expr) -> bool:
    """`os.environ`, or a mapping called `env` (`settings().env`, a fault plan's `env`). A
    WSGI `environ` is a request, not the process's environment."""
    if isinstance(node, ast.Attribute):
        is_os_environ = isinstance(node.value, ast.Name) and node.value.id == "os"
        return node.attr == "env" or (node.attr == "environ" and is_os_environ)
    return isinstance(node, ast.Name) and node.id == "env"


class _Reads(ast.NodeVisitor):
    def __init__(self, tree: ast.Module) -> None:
        self.names: set[str] = set()
        self.constants: dict[str, set[str]] = {}  # module names bound to env names
        self.bound: dict[str, set[str]] = {}  # loop variables bound to env names
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                values = self._strings(stmt.value)
                for target in targets:
                    if isinstance(target, ast.Name) and values:
                        self.constants[target.id] = values
        self.visit(tree)

    @staticmethod
    def _strings(node: ast.expr) -> set[str]:
        """The env-like strings of a literal: a string, or a dict's values, or a sequence."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value} if ENV_NAME.fullmatch(node.value) else set()
        items: list[ast.expr | None] = []
        if isinstance(node, ast.Dict):
            items = list(node.values)
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = list(node.elts)
        return {
            item.value
            for item in items
            if isinstance(item, ast.Constant)
            and isinstance(item.value, str)
            and ENV_NAME.fullmatch(item.value)
        }

    def _names_of(self, node: ast.expr) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value} if ENV_NAME.fullmatch(node.value) else set()
        if isinstance(node, ast.Name):
            return self.bound.get(node.id) or self.constants.get(node.id, set())
        return set()

    def _bind(self, target: ast.expr, iterable: ast.expr) -> None:
        # `for attr, env in NAMES.items()` / `for env in NAMES.values()` / `for env in NAMES`
        if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute):
            source = iterable.func.value
            if isinstance(source, ast.Name) and source.id in self.constants:
                names = self.constants[source.id]
                if iterable.func.attr == "items" and isinstance(target, ast.Tuple):
                    target = target.elts[-1]
                if isinstance(target, ast.Name):
                    self.bound[target.id] = names
        elif (
            isinstance(iterable, ast.Name)
            and isinstance(target, ast.Name)
            and iterable.id in self.constants
        ):
            self.bound[target.id] = self.constants[iterable.id]

    def visit_For(self, node: ast.For) -> None:
        self._bind(node.target, node.iter)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._bind(node.target, node.iter)
        self.generic_visit(node)

    def _visit_comprehension_first(self, node: ast.expr, generators: list[ast.comprehension]):
        for generator in generators:
            self.visit(generator)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.comprehension):
                self.visit(child)

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._visit_comprehension_first(node, node.generators)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._visit_comprehension_first(node, node.generators)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._visit_comprehension_first(node, node.generators)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._visit_comprehension_first(node, node.generators)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if node.args and isinstance(func, ast.Attribute):
            reads_mapping = func.attr == "get" and _is_environment(func.value)
            if reads_mapping or func.attr in SETTINGS_READERS:
                self.names |= self._names_of(node.args[0])
        if node.args and isinstance(func, ast.Attribute) and func.attr == "getenv":
            self.names |= self._names_of(node.args[0])
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load) and _is_environment(node.value):
            self.names |= self._names_of(node.slice)
        self.generic_visit(node)


def variables_read(source: str) -> set[str]:
    return _Reads(ast.parse(source)).names


def code_variables() -> dict[str, set[str]]:
    """Each variable the product reads, with the files that read it."""
    found: dict[str, set[str]] = {}
    for entry in SCANNED:
        path = ROOT / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            for name in variables_read(file.read_text(encoding="utf-8")):
                found.setdefault(name, set()).add(str(file.relative_to(ROOT)))
    return found


def readme_variables() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('import os\nos.environ.get("MAGPIE_HOME")', {"MAGPIE_HOME"}),
        ('import os\nos.environ["EVENT_BUS_NAME"]', {"EVENT_BUS_NAME"}),
        ('import os\nos.getenv("ALERT_TOPIC_ARN", "x")', {"ALERT_TOPIC_ARN"}),
        (
            'def f(self):\n    return self._int("REPLY_MAX_ATTEMPTS", 3, minimum=1)',
            {"REPLY_MAX_ATTEMPTS"},
        ),
        ('def f(self):\n    return self.require("GUARD_TABLE")', {"GUARD_TABLE"}),
        (
            'SEED = "MAGPIE_FAULTS_SEED"\ndef f(env):\n    return env.get(SEED, "0")',
            {"MAGPIE_FAULTS_SEED"},
        ),
        ('settings().env.get("MAGPIE_FAULTS")', {"MAGPIE_FAULTS"}),
        (
            'import os\nNAMES = {"key": "TWITTER_API_KEY", "secret": "TWITTER_API_SECRET"}\n'
            'values = {a: os.environ.get(e, "") for a, e in NAMES.items()}',
            {"TWITTER_API_KEY", "TWITTER_API_SECRET"},
        ),
        # Writing the environment is not reading it; other mappings are not the environment.
        ('import os\nos.environ["MAGPIE_BACKEND"] = "local"', set()),
        ('headers.get("X_TWITTER_WEBHOOKS")', set()),
        ('def app(environ, start_response):\n    environ.get("HTTP_HOST")', set()),
    ],
)
def test_the_scanner_finds_what_is_read(source, expected):
    assert variables_read(source) == expected


def test_the_scanner_sees_the_settings_and_the_secrets():
    found = code_variables()
    assert {"MAGPIE_BACKEND", "REPLY_MEMORY_DAYS", "GUARD_TABLE", "TWITTER_ACCESS_TOKEN"} <= set(
        found
    )
    assert "chalicelib/config.py" in found["REPLY_MEMORY_DAYS"]


def test_every_variable_the_code_reads_is_in_the_readme():
    documented = readme_variables()
    missing = {n: sorted(files) for n, files in code_variables().items() if n not in documented}
    assert not missing, f"add these to README.md's configuration table: {missing}"


def test_the_readme_documents_no_variable_the_code_does_not_read():
    stale = readme_variables() - set(code_variables())
    assert not stale, f"README.md documents variables nothing reads: {sorted(stale)}"
