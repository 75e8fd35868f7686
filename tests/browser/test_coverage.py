"""Every notebook has a real-browser test (and no browser test points at a notebook that is gone).

Each browser test module ``tests/browser/test_*.py`` declares, at module level, the notebook(s) it
drives::

    NOTEBOOK = "00-start-here.ipynb"            # or a list / tuple of names

Names are relative to ``notebooks/``. The declarations are read with ``ast`` (the modules are not
imported), so this test runs anywhere, without Chromium, and is not marked ``browser``.
"""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parents[1] / "notebooks"


def declared_notebooks(module: Path) -> list[str]:
    """The names assigned to a module-level ``NOTEBOOK`` in ``module`` (literal str/list/tuple)."""
    tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == "NOTEBOOK" for t in targets):
            continue
        try:
            literal = ast.literal_eval(value)
        except ValueError as exc:
            raise AssertionError(
                f"{module.name}: NOTEBOOK must be a literal string or list of strings"
            ) from exc
        if isinstance(literal, str):
            names.append(literal)
        elif isinstance(literal, (list, tuple)) and all(isinstance(x, str) for x in literal):
            names.extend(literal)
        else:
            raise AssertionError(f"{module.name}: NOTEBOOK must be a string or a list of strings")
    return names


def browser_test_declarations() -> dict[str, list[str]]:
    """notebook name -> browser test modules that declare it."""
    out: dict[str, list[str]] = {}
    for module in sorted(HERE.glob("test_*.py")):
        for name in declared_notebooks(module):
            out.setdefault(name, []).append(module.name)
    return out


def workbook_notebooks() -> set[str]:
    return {p.name for p in NOTEBOOKS.glob("*.ipynb")}


def test_every_notebook_has_a_browser_test():
    declared = browser_test_declarations()
    missing = sorted(workbook_notebooks() - set(declared))
    assert not missing, (
        "notebooks without a real-browser test: "
        + ", ".join(missing)
        + ". Add tests/browser/test_<name>.py declaring NOTEBOOK = '<name>.ipynb' "
        "(see tests/browser/test_00_start_here.py)."
    )


def test_no_browser_test_points_at_a_missing_notebook():
    declared = browser_test_declarations()
    stale = {name: mods for name, mods in declared.items() if not (NOTEBOOKS / name).is_file()}
    assert not stale, f"browser tests declare notebooks that are not in notebooks/: {stale}"


def test_declarations_are_read(tmp_path):
    """The scanner itself: string, list and annotated forms; other assignments ignored."""
    mod = tmp_path / "test_x.py"
    mod.write_text(
        'NOTEBOOK = "a.ipynb"\n'
        'NOTEBOOK: list = ["b.ipynb", "c.ipynb"]\n'
        'OTHER = "d.ipynb"\n'
        'def f():\n    NOTEBOOK = "e.ipynb"\n'
    )
    assert declared_notebooks(mod) == ["a.ipynb", "b.ipynb", "c.ipynb"]
