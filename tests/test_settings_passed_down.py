"""The environment is read at the top, once, into the settings, and the settings are handed down.

``dxl`` (each command) and the service's own entry point (``api.app``: ``uvicorn api.app:app`` has no caller
to hand it settings) read ``DXL_*`` into :class:`node.settings.Settings` / :class:`api.settings.ApiSettings`;
``node/``, ``api/`` and ``verifier/`` are given them, or the values they need, and never look a variable up:
a component that read ``DXL_HOME`` itself worked on another home than the settings it was given named (a
``.env`` file, a test's or a bench's own home). This test reads the source as import-linter reads imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from node.paths import PROJECT_ROOT

BELOW_THE_TOP = ("node", "api", "verifier")
#: The functions that read the settings from the environment (and a .env file).
SETTINGS_READERS = {"load_settings", "load_api_settings", "read_settings"}
#: Where they may be called below dxl/: the service's entry point, started by uvicorn rather than a caller.
SETTINGS_READ_AT = {("api/app.py", "load_api_settings")}


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Lines reading the process environment: ``os.environ[...]``, ``os.environ.get``, ``"X" in os.environ``,
    ``os.getenv``, ``from os import environ``. Handing the whole environment to a child process
    (``{**os.environ, ...}``), which reads its own settings at its own top, is not a read."""
    passed_on = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
        if key is None  # ``**mapping``
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            read = node.attr in ("getenv", "getenvb", "environb") or node.attr == "environ"
            if read and id(node) not in passed_on:
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, f"from os import {a.name}") for a in node.names if "env" in a.name]
    return found


def _settings_reads(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in SETTINGS_READERS:
                found.append((node.lineno, str(name)))
    return found


def _sources() -> list[Path]:
    return sorted(p for top in BELOW_THE_TOP for p in (PROJECT_ROOT / top).rglob("*.py"))


@pytest.mark.parametrize("source", _sources(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_nothing_below_the_top_reads_the_environment(source: Path) -> None:
    assert _environment_reads(ast.parse(source.read_text(encoding="utf-8"))) == []


def test_the_settings_are_read_only_at_the_top() -> None:
    found = {
        (str(source.relative_to(PROJECT_ROOT)), name, line)
        for source in _sources()
        if source.name != "settings.py"  # where the readers are defined (and read_settings serves both)
        for line, name in _settings_reads(ast.parse(source.read_text(encoding="utf-8")))
    }
    assert {(path, name) for path, name, _ in found} <= SETTINGS_READ_AT, sorted(found)


def test_the_check_finds_each_kind_of_read() -> None:
    """The scans above on a module doing each thing they look for, and on one only handing the environment
    on: a pass above is not a scan that finds nothing."""
    reads = (
        "import os\nfrom os import environ\n"
        "a = os.environ['DXL_HOME']\nb = os.environ.get('DXL_SOLC')\n"
        "c = 'X' in os.environ\nd = os.getenv('Y')\n"
        "e = load_settings()\nf = settings_module.load_api_settings()\n"
    )
    tree = ast.parse(reads)
    assert sorted(line for line, _ in _environment_reads(tree)) == [2, 3, 4, 5, 6]
    assert _settings_reads(tree) == [(7, "load_settings"), (8, "load_api_settings")]
    assert _environment_reads(ast.parse("import os\nenv = {**os.environ, 'DXL_HOME': '/h'}\n")) == []
