"""A house with no circles (issue #17): the import graph of ``supervision/``.

Every module of the package is read with ``ast`` (nothing is imported) and every import of a
``supervision`` module is collected: at the top of the file and inside functions alike, since a
deferred import is how a circle hides. Importing ``a.b.c`` also runs the ``__init__.py`` of
``a.b``, so a module that imports a submodule depends on the package too (the root package
``supervision`` excepted: its ``__init__`` only forwards, from inside functions, which a test
below checks).

Two rules:

1. No circles: the modules can be put in an order where each imports only modules before it
   (``graphlib.TopologicalSorter``).
2. Imports go down the layers, never up. A module may import modules of its own layer or of a
   lower one. The layers, from the bottom:

   0. foundations: errors, instrument specs, settings (``config``) and the rules object built
      from them (``rules``), the data contract
      (``schema``), instruments and scoring, the metrics' helpers (``stats``, ``_frames``,
      ``_checks``), the synthetic clinic (``synth``), the stored-table cache (``table_cache``), worker
      processes (``parallel``). They import only each other.
   1. files and tables: the file readers (``io.readers``), safe spreadsheet export
      (``io.export``), the ``Caseload`` record and its one-clinician scope (``caseload``),
      small-count suppression (``privacy.suppression``: pure functions on frames).
   2. loading: the loader (``io``), FHIR and column-mapped imports (``io.fhir``,
      ``io.mapping``), pseudonymisation (``privacy.pseudonymise``: file to file), self-review
      (``privacy.scope``: loads through ``io``), the ``privacy`` package that re-exports those
      three, and the package's front door (``supervision``).
   3. metrics, one module per area (outcome, alliance, engagement, focus, adaptation): tidy in,
      tidy out.
   4. what is built on the metrics: ``metrics.tables``, ``agenda``, ``followup``, ``notes``,
      ``publish``, ``selection``, ``remembered``.
   5. figures (plotly builders).
   6. the app's pages and dashboards (``widgets``) and the HTML report (``report``).
   7. the ``supervision`` command (``cli``).

A new module must be given a layer here (the test says so when one is missing); the same table
is described in the "Architecture" section of README.md.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "supervision"

#: layer -> modules (a name ending in ".*" covers a package's submodules and the package itself).
LAYERS: dict[int, list[str]] = {
    0: ["supervision.errors", "supervision.instrument_specs", "supervision.config", "supervision.rules", "supervision.schema",
        "supervision.instruments", "supervision.instruments.scoring", "supervision.metrics",
        "supervision.metrics.stats", "supervision.metrics._frames", "supervision.metrics._checks", "supervision.synth",
        "supervision.table_cache", "supervision.parallel"],
    1: ["supervision.io.readers", "supervision.io.export", "supervision.caseload", "supervision.privacy.suppression"],
    2: ["supervision", "supervision.io", "supervision.io.fhir", "supervision.io.mapping", "supervision.privacy",
        "supervision.privacy.pseudonymise", "supervision.privacy.scope"],
    3: ["supervision.metrics.outcome", "supervision.metrics.alliance", "supervision.metrics.engagement",
        "supervision.metrics.focus", "supervision.metrics.adaptation"],
    4: ["supervision.metrics.tables", "supervision.agenda", "supervision.followup", "supervision.notes",
        "supervision.publish", "supervision.selection", "supervision.remembered"],
    5: ["supervision.figures.*"],
    6: ["supervision.widgets.*", "supervision.report"],
    7: ["supervision.cli"],
}

#: Imports that close a circle and are not yet taken apart (module, imported module). None left:
#: the last (``widgets.caseload`` / ``widgets.client`` taking ``Shared`` from ``widgets.app``) went
#: when ``Shared`` moved to ``widgets.shared``. Each entry must still exist (test_no_circles fails on a stale one): delete it once fixed.
NOT_YET_FIXED: set[tuple[str, str]] = set()


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _parents(name: str) -> list[str]:
    """The packages whose ``__init__`` runs when ``name`` is imported (the root excepted)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def _imports(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """Modules of the package that ``name`` imports -> line of the first such import."""

    def known(dotted: str) -> str:
        while dotted and dotted not in modules:  # `from supervision.io.readers import x`: the module
            dotted = dotted.rpartition(".")[0]
        return dotted

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [known(a.name) for a in node.names if a.name.split(".")[0] == "supervision"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..io import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "supervision":
                continue
            for alias in node.names:  # `from supervision.metrics import outcome` imports a submodule
                sub = f"{source}.{alias.name}"
                targets.append(sub if sub in modules else known(source))
        for target in targets:
            if target != name:
                found.setdefault(target, node.lineno)
            for parent in _parents(target):  # run by the import; a module's own packages are already running
                if parent != name and parent not in _parents(name):
                    found.setdefault(parent, node.lineno)
    return found


def _graph() -> dict[str, dict[str, int]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer_of(name: str) -> int | None:
    for layer, names in LAYERS.items():
        for pattern in names:
            if name == pattern or (pattern.endswith(".*") and (name == pattern[:-2] or name.startswith(pattern[:-1]))):
                return layer
    return None


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """The reader finds top-level, deferred, relative and submodule imports, and the packages they run."""
    pkg = tmp_path / "supervision"
    (pkg / "io").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "config.py").write_text("import json\n")
    (pkg / "io" / "__init__.py").write_text("from supervision.config import x\n")
    (pkg / "io" / "readers.py").write_text("def f():\n    from .. import config\n")
    (pkg / "io" / "fhir.py").write_text("from . import readers\n")
    (pkg / "cli.py").write_text("import supervision.io.fhir\n\ndef main():\n    from supervision.io.readers import f\n")
    modules = _modules(pkg)
    got = {name: set(_imports(name, path, modules)) for name, path in modules.items()}
    assert got == {
        "supervision": set(), "supervision.config": set(), "supervision.io": {"supervision.config"},
        "supervision.io.readers": {"supervision.config"},
        "supervision.io.fhir": {"supervision.io.readers"},  # its own package is not an import of its own
        "supervision.cli": {"supervision.io", "supervision.io.fhir", "supervision.io.readers"},
    }


def test_no_circles():
    graph = _graph()
    stale = sorted(edge for edge in NOT_YET_FIXED if edge[1] not in graph.get(edge[0], {}))
    assert not stale, f"These imports are gone: delete them from NOT_YET_FIXED: {stale}"
    graph = {m: {d: line for d, line in deps.items() if (m, d) not in NOT_YET_FIXED} for m, deps in graph.items()}
    try:
        order = list(graphlib.TopologicalSorter({m: set(deps) for m, deps in graph.items()}).static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1][::-1]  # graphlib lists each module before the one that imports it
        steps = [f"{a} imports {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
        pytest.fail("The modules import each other in a circle: " + "; ".join(steps) + ". Move the shared part "
                    "into a lower module (see the layers in this file's docstring).", pytrace=False)
    assert set(order) == set(graph)


def test_imports_never_go_up_a_layer():
    graph = _graph()
    missing = sorted(m for m in graph if _layer_of(m) is None)
    assert not missing, (f"No layer is given for {', '.join(missing)}: add each to LAYERS in "
                         "tests/test_architecture.py (and to README.md's Architecture section).")
    upward = [f"{m} (layer {_layer_of(m)}) imports {d} (layer {_layer_of(d)}) at line {line}"
              for m, deps in sorted(graph.items()) for d, line in sorted(deps.items()) if _layer_of(d) > _layer_of(m)]
    assert not upward, "Imports go up a layer: " + "; ".join(upward)


def test_every_layer_entry_names_a_module():
    """A stale name in LAYERS (a module moved or removed) would silently cover nothing."""
    modules = set(_modules())
    stale = [p for names in LAYERS.values() for p in names
             if (p[:-2] if p.endswith(".*") else p) not in modules]
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_importing_the_package_runs_nothing():
    """The root ``__init__`` imports package modules only inside its forwarding functions."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
           and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
    assert not top, f"supervision/__init__.py imports at the top (line {top[0].lineno}): move it into the function that needs it."


def test_command_line_code_only_in_the_cli():
    """Argument parsing, printed summaries and ``__main__`` entries live in ``supervision/cli.py`` only."""
    found = []
    for name, path in _modules().items():
        if name == "supervision.cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    (a.name if isinstance(node, ast.Import) else node.module or "") == "argparse" for a in node.names):
                found.append(f"{name} imports argparse (line {node.lineno})")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{name} prints (line {node.lineno})")
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "__name__":
                found.append(f"{name} has a __main__ entry (line {node.lineno})")
    assert not found, "Command-line code outside supervision/cli.py: " + "; ".join(found)
