"""pyproject.toml is the single source of dependencies; environment.yml must mirror it."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for req in meta["dependencies"] + meta["optional-dependencies"]["test"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.]*)", req)
        assert m, f"pyproject dependency {req!r} must be pinned exactly (name==version)"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def _environment_pins() -> tuple[dict[str, str], list[str], str]:
    pins, pip, python = {}, [], ""
    in_pip = False
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        item = re.match(r"^(\s*)- (.+?)\s*$", line.split("#")[0].rstrip() or " ")
        if not item:
            continue
        indent, value = len(item.group(1)), item.group(2)
        if value == "pip:":
            in_pip = True
            continue
        if in_pip and indent > 2:
            pip.append(value)
            continue
        in_pip = False
        name, _, version = value.partition("=")
        if name == "python":
            python = version
        elif name != "pip":
            pins[name.lower()] = version
    return pins, pip, python


def test_environment_yml_mirrors_pyproject():
    py, (env, pip, python) = _pyproject_pins(), _environment_pins()
    assert python == "3.11"
    assert env == py, f"environment.yml and pyproject.toml differ: only in pyproject {set(py.items()) - set(env.items())}, only in environment.yml {set(env.items()) - set(py.items())}"
    assert pip[-1] == "-e .", "environment.yml must end with a pip '-e .' install of the package"


def test_channels_are_conda_forge_only():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"channels:\s*\n\s*- conda-forge\s*\n(?!\s*- )", text + "\n")


def test_import_is_silent_and_light():
    code = ("import sys, supervision; heavy = [m for m in ('pandas', 'pandera', 'plotly', 'ipywidgets', 'numpy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing supervision pulled in {out.stdout.strip()}"
    assert out.stderr == ""


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, flags=re.S)
    assert blocks, "README must show its commands in code blocks"
    first_two = [b.strip() for b in blocks[:2]]
    assert first_two == ["make lab", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
