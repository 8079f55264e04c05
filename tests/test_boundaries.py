"""The import boundaries of docs/design.md, checked on the import graph (grimp) of the source.

The core (integrations/), the pages (dashboard/) and the REST API (api/) name no provider: none of
them imports jumpcloud/, directly or through another module. The core's modules import each other
without circles, and the API does not borrow the dashboard's forms.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("integrations", "dashboard", "api", "jumpcloud", "accounts", "torii")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Imports under `if TYPE_CHECKING:` never run; every other import counts, in a function or not.
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The import circles among the modules of `package` (strongly connected components, Tarjan)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in modules) for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in edges[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_the_graph_sees_the_provider_importing_the_core(graph):
    # The check below would pass on an empty graph: make sure it is the real one.
    assert graph.chain_exists(importer="jumpcloud", imported="integrations", as_packages=True)
    assert "integrations.services.connections" in graph.modules


@pytest.mark.parametrize("package", ["integrations", "dashboard", "api"])
def test_the_core_the_pages_and_the_api_never_import_the_provider(graph, package):
    chain = graph.find_shortest_chain(importer=package, imported="jumpcloud", as_packages=True)
    assert chain is None, f"{package} reaches jumpcloud through {' → '.join(chain or ())}"


def test_no_import_circles_among_the_cores_modules(graph):
    assert _cycles(graph, "integrations") == []


def test_the_cycle_finder_finds_a_circle(graph):
    graph.add_import(importer="integrations.providers", imported="integrations.services.connections")
    try:
        assert any("integrations.providers" in c for c in _cycles(graph, "integrations"))
    finally:
        graph.remove_import(importer="integrations.providers", imported="integrations.services.connections")


def test_the_api_does_not_borrow_the_dashboards_forms(graph):
    assert not graph.chain_exists(importer="api", imported="dashboard.forms_actions", as_packages=True)
    assert not graph.chain_exists(importer="api", imported="dashboard.forms", as_packages=True)
