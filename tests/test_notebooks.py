"""Every notebook executes headlessly (a fresh kernel, as a user's Run All would) without errors,
and is committed without outputs or widget state (client data must never land in git)."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: strip outputs"
        assert "def " not in "".join(cell["source"]) and "class " not in "".join(cell["source"]), \
            "notebooks orchestrate; the package computes (no def/class in notebooks)"
    assert "widgets" not in nb["metadata"], f"{path.name}: strip widget state"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_without_errors(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name}: {out.get('ename')}: {out.get('evalue')}"
            if out["output_type"] == "stream":
                assert out["name"] != "stderr", f"{path.name} wrote to stderr: {out['text'][:500]}"
            text = json.dumps(out.get("data", {}))
            assert "Something went wrong" not in text, f"{path.name}: a dashboard showed an error: {text[:500]}"


def test_there_is_a_start_here_notebook():
    assert (ROOT / "notebooks" / "00-start-here.ipynb") in NOTEBOOKS
