"""The project's own import graph follows the layer order of STYLE.md and issue 10, and has no circles.

Read with the standard library's `ast` (every `import`, at module level or inside a function, counts), over the
project's packages (migrations aside). Layers, lowest first; a module may import its own layer and those below:

    paytrust -> merchants -> apikeys -> gateways -> webhooks.outbound -> invoices -> payments -> webhooks.inbound
    -> reporting, iso20022

(The issue lists merchants and apikeys together; merchants, the tenant, imports nothing of apikeys, so they are
two layers here and cannot import each other in a circle.) Packages listed together form one layer; module
circles are refused everywhere, and so are circles between packages. The subpackages of `webhooks` are separate
layers.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[tuple[str, ...]] = [
    ("paytrust", "webhooks"),  # `webhooks` itself is only the package holding the two webhooks layers
    ("merchants",),
    ("apikeys",),
    ("gateways",),
    ("ledger",),
    ("webhooks.outbound",),
    ("invoices",),
    ("risk",),
    ("payments",),
    ("webhooks.inbound",),
    ("reconciliation",),
    ("reporting", "iso20022"),
]
PACKAGES = (
    "paytrust",
    "merchants",
    "apikeys",
    "gateways",
    "ledger",
    "webhooks",
    "invoices",
    "risk",
    "payments",
    "reconciliation",
    "reporting",
    "iso20022",
)

# Limits for the packages that carry the core flow (issue 10: modules by use case).
SIZE_LIMITED = ("invoices", "payments", "webhooks")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


# ---- reading the graph -----------------------------------------------------------------------------------------


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _imported_names(module: str, path: Path, tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from a import b` imports module a.b when b is a module, else (a name in) module a.
            names += [f"{target}.{alias.name}" for alias in node.names]
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (resolved to the longest known module prefix)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name in _imported_names(module, path, ast.parse(path.read_text(), filename=str(path))):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                graph[module].add(name)
        graph.setdefault(module, set())
    return graph


# ---- the rules --------------------------------------------------------------------------------------------------


def layer_of(module: str, layers: list[tuple[str, ...]] = LAYERS) -> int:
    best, best_len = -1, -1
    for index, members in enumerate(layers):
        for member in members:
            if (module == member or module.startswith(member + ".")) and len(member) > best_len:
                best, best_len = index, len(member)
    if best < 0:
        raise LookupError(f"{module} belongs to no layer")
    return best


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, ...]] = LAYERS) -> list[str]:
    return sorted(
        f"{source} (layer {layer_of(source, layers)}) imports {target} (layer {layer_of(target, layers)})"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target, layers) > layer_of(source, layers)
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. the import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


# ---- the project ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(project_modules())


def test_every_module_belongs_to_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_import_goes_up_the_layers(graph):
    assert upward_imports(graph) == []


def test_no_import_circles_between_modules(graph):
    assert import_cycles(graph) == []


def test_no_import_circles_between_packages(graph):
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2]) if module.startswith("webhooks.") else module.split(".")[0]

    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        packages[package(source)] |= {package(t) for t in targets if package(t) != package(source)}
    assert import_cycles(packages) == []


def test_paytrust_imports_no_app(graph):
    assert {t.split(".")[0] for s, ts in graph.items() if s.startswith("paytrust") for t in ts} <= {
        "paytrust"
    }


def test_no_wiring_through_hooks_or_admin_patching():
    """No registered hooks, providers or handler globals, and no patching of the admin site (issue 10)."""
    forbidden = [
        re.compile(r"\bregister_\w+_(hook|provider)\b"),
        re.compile(r"\b[A-Z_]*HANDLER\s*(:[^=]*)?=\s"),
        re.compile(r"\badmin\.site\.\w+\s*=[^=]"),
        re.compile(r"\badmin\.site\.unregister\b"),
        re.compile(r"\badmin\.site\._registry\b"),
    ]
    found = []
    for path in project_modules().values():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(pattern.search(line) for pattern in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_core_modules_and_functions_stay_small():
    too_long = []
    for module, path in project_modules().items():
        if module.split(".")[0] not in SIZE_LIMITED:
            continue
        source = path.read_text()
        if (lines := source.count("\n")) > MAX_MODULE_LINES:
            too_long.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert too_long == []


# ---- the checker itself can fail --------------------------------------------------------------------------------


def test_checker_finds_an_upward_import_and_a_circle(tmp_path):
    for package, body in {
        "paytrust": "",
        "merchants": "",
        "apikeys": "",
        "gateways": "from payments import services\n",  # upward: gateways -> payments
        "webhooks": "",
        "invoices": "from invoices import b\n",
        "payments": "",
        "reporting": "",
        "iso20022": "",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "services.py").write_text(body)
    (tmp_path / "invoices" / "b.py").write_text("def f():\n    from invoices.services import x\n")  # a circle
    (tmp_path / "webhooks" / "inbound").mkdir()
    (tmp_path / "webhooks" / "inbound" / "__init__.py").write_text("")
    (tmp_path / "webhooks" / "inbound" / "api.py").write_text("from webhooks.outbound import services\n")
    (tmp_path / "webhooks" / "outbound").mkdir()
    (tmp_path / "webhooks" / "outbound" / "__init__.py").write_text("")
    (tmp_path / "webhooks" / "outbound" / "services.py").write_text("from webhooks.inbound import api\n")

    graph = import_graph(project_modules(tmp_path))

    upward = upward_imports(graph)
    assert any(line.startswith("gateways.services (layer 3) imports payments.services") for line in upward)
    assert any(
        line.startswith("webhooks.outbound.services (layer 5) imports webhooks.inbound.api")
        for line in upward
    )
    assert not any(line.startswith("webhooks.inbound.api") for line in upward)  # downward is fine
    assert ["invoices.b", "invoices.services"] in import_cycles(graph)
