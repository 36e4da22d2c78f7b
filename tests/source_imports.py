"""What a source file imports, read from its syntax tree: one reading for the check that every imported
package is declared (tests/test_dependencies.py) and for the verifier's independence
(tests/verifier/test_verifier_isolation.py)."""

from __future__ import annotations

import ast
from pathlib import Path


def top_level_imports(source: Path) -> set[str]:
    """Top-level modules ``source`` imports at run time, lazily or not; imports for type checking only (under
    ``if TYPE_CHECKING``) are left out, since they never run."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for n in ast.walk(stmt)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names
