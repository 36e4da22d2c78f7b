"""reportlab, which writes a scorecard's PDF (node/audit/scorecard_pdf.py), and Pillow, which it brings, are
imported inside the functions that make a PDF: a module-level import anywhere in the service's or the command
line's sources would load them at every start of the service (its routes import the module that offers the
PDF) and of every ``dxl`` command. Read from the sources: a fresh interpreter importing the service took some
3 s of a loaded machine to say the same; tests/test_dxl_cli.py holds ``dxl --help`` to it in a process."""

from __future__ import annotations

import ast

from node.paths import PROJECT_ROOT

LAZY = {"reportlab", "PIL"}


def _eager_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of each import of ``LAZY`` run when the module is imported: at module level, in a class
    body or under an ``if`` there, not inside a function nor under ``if TYPE_CHECKING``."""
    found: list[tuple[int, str]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, a.name) for a in node.names if a.name.split(".")[0] in LAZY)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LAZY:
                found.append((node.lineno, node.module or ""))
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.ClassDef, ast.Try, ast.With)):
                visit(node.body)

    visit(tree.body)
    return found


def test_no_source_imports_the_pdf_writer_when_it_is_imported() -> None:
    sources = [
        p for package in ("node", "api", "verifier", "dxl") for p in (PROJECT_ROOT / package).rglob("*.py")
    ]
    eager = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in sources
        if (found := _eager_imports(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert eager == {}
    # And the module that makes the PDF does import it (lazily): the check above looks at the right name.
    pdf = ast.parse((PROJECT_ROOT / "node/audit/scorecard_pdf.py").read_text(encoding="utf-8"))
    lazy = [
        n for n in ast.walk(pdf) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("reportlab")
    ]
    assert lazy and _eager_imports(pdf) == []


def test_a_module_level_import_is_found() -> None:
    source = "\n".join([
        "from typing import TYPE_CHECKING", "import reportlab.lib", "if TYPE_CHECKING:", "    import PIL",
        "def f():", "    from reportlab.pdfgen import canvas", "try:", "    from PIL import Image",
        "except ImportError:", "    pass",
    ])  # fmt: skip
    assert _eager_imports(ast.parse(source)) == [(2, "reportlab.lib"), (8, "PIL")]
