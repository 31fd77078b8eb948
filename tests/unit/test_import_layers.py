"""The packages depend one way: a walk over every import of the service's code.

Each package sits in a layer (docs/architecture.md, "Layers and packages"). An
import may point at the same package, or at a package in the same or a lower
layer — never upward — and the package graph has no cycle at all. Imports made
inside functions count (they are still dependencies); imports only for type
checkers (``if TYPE_CHECKING:``) do not.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("verify_service", "integrations", "jobs")
LINE_LIMIT = 400

# Bottom to top. A top-level module of verify_service is a package of its own here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("verify_service.db", "verify_service.settings", "verify_service.dev_secrets", "verify_service.crypto", "verify_service.web_input",
     "verify_service.errors", "verify_service.observability", "verify_service.web_names"),
    ("integrations",),
    ("verify_service.registry", "verify_service.api", "verify_service.csrf", "verify_service.ratelimit",
     "verify_service.pages"),
    ("verify_service.audit",),
    ("verify_service.webhooks",),
    ("verify_service.accounts",),
    ("verify_service.staff",),
    ("verify_service.support",),
    ("verify_service.calls",),
    ("verify_service.review", "verify_service.ops"),
    ("verify_service.freelancer",),
    # Workflows across features: closing an account ends its calls, reviews and freelancer sessions.
    ("verify_service.closure",),
    ("verify_service.leads", "verify_service.inbound", "verify_service.events", "verify_service.simulations",
     "verify_service.meet_events"),
    # The application: the app factory, its pages of its own, the CLI and the scheduler's jobs.
    ("verify_service", "verify_service.cli", "verify_service.health", "verify_service.web", "verify_service.demo",
     "verify_service.migrate", "verify_service.server", "verify_service.models", "verify_service.key_rotation",
     "verify_service.migrations", "verify_service.labels", "jobs"),
)
LAYER_OF = {package: level for level, packages in enumerate(LAYERS) for package in packages}
APPLICATION = set(LAYERS[-1])


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "verify_service":
        return parts[0]
    return ".".join(parts[:2])


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return hidden


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, imported module) of every import that runs, naming the deepest module it reaches."""
    hidden = _type_checking_nodes(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.append((node.lineno, child if _is_module(child) else node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in SOURCES]


def _graph() -> dict[tuple[str, str], list[str]]:
    """Package → package edges, each with where it is made ("module:line")."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            module = _module_name(path)
            for line, imported in _imports(ast.parse(path.read_text(encoding="utf-8"))):
                if _package(module) != _package(imported):
                    edges[(_package(module), _package(imported))].append(f"{module}:{line}")
    return edges


@pytest.fixture(scope="module")
def edges() -> dict[tuple[str, str], list[str]]:
    return _graph()  # a fixture, not a module constant: only the worker that runs these tests reads the tree


def test_every_package_has_a_layer(edges: dict[tuple[str, str], list[str]]) -> None:
    packages = {package for edge in edges for package in edge}
    assert packages - set(LAYER_OF) == set(), "add the new package to LAYERS (and to docs/architecture.md)"


def test_imports_never_point_up_a_layer(edges: dict[tuple[str, str], list[str]]) -> None:
    upward = sorted(f"{importer} -> {imported} ({', '.join(where[:3])})"
                    for (importer, imported), where in edges.items()
                    if LAYER_OF.get(imported, -1) > LAYER_OF.get(importer, -1))
    assert upward == []


def test_no_package_cycle(edges: dict[tuple[str, str], list[str]]) -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, imported in edges:
        if not (importer in APPLICATION and imported in APPLICATION):  # the application's modules compose freely
            graph[importer].add(imported)
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(package: str) -> list[str] | None:
        state[package] = 1
        path.append(package)
        for imported in sorted(graph[package]):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        path.pop()
        state[package] = 2
        return None

    for package in sorted(graph):
        if package not in state and (cycle := visit(package)):
            pytest.fail("import cycle: " + " -> ".join(cycle) + "\n" + "\n".join(
                f"  {a} -> {b}: {', '.join(edges[(a, b)][:3])}" for a, b in zip(cycle, cycle[1:])))


def test_no_module_is_too_long_to_read() -> None:
    """A module over ~400 lines does two jobs: split it along its seam (migrations are history, not code)."""
    long = sorted(f"{path.relative_to(ROOT)}: {count} lines"
                  for source in SOURCES for path in (ROOT / source).rglob("*.py")
                  if "migrations" not in path.parts
                  and (count := len(path.read_text(encoding="utf-8").splitlines())) > LINE_LIMIT)
    assert long == []


def test_the_walk_sees_imports_inside_functions() -> None:
    """The walk must be able to fail: a function-level import is an edge, a TYPE_CHECKING one is not."""
    tree = ast.parse("import typing\nif typing.TYPE_CHECKING:\n    import verify_service.calls\n"
                     "def f():\n    from verify_service.review import views\n")
    assert _imports(tree) == [(5, "verify_service.review.views")]
