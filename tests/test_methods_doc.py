"""docs/methods.md is the definitions file the code cites: every cited section exists in it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_cited_section_of_docs_methods_exists():
    doc = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"(?m)^#+ (\d+(?:\.\d+)?)[. ]", doc))
    cited = {}
    for path in (ROOT / "supervision").rglob("*"):
        if path.suffix not in (".py", ".toml"):
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"docs/methods\.md,? ?§?\s*((?:§?\d+(?:\.\d+)?(?:, )?)+)", text):
            for sec in re.findall(r"\d+(?:\.\d+)?", m.group(1)):
                cited.setdefault(sec, set()).add(path.name)
    assert cited, "no citation of docs/methods.md found"
    missing = {s: sorted(f) for s, f in cited.items() if s not in headings}
    assert not missing, f"sections cited but not in docs/methods.md: {missing}"
    assert "../shared/DEFINITIONS.md" not in "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "supervision").rglob("*.py"))
