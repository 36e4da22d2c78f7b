"""The text of a PDF file, read by pypdf: a reader apart from the writer (reportlab) the service uses."""

from __future__ import annotations

import io


def pdf_text(raw: bytes) -> list[str]:
    """Every line of text of every page, in order, a row drawn as separate strings on one line."""
    from pypdf import PdfReader

    assert raw.startswith(b"%PDF-"), raw[:20]
    pages = PdfReader(io.BytesIO(raw)).pages
    # Layout mode keeps a table's row, or a bar's label and value, on one line (the plain mode breaks it at
    # every change of position), and marks vertical gaps with empty lines, left out here.
    return [
        line.rstrip()
        for page in pages
        for line in page.extract_text(extraction_mode="layout").splitlines()
        if line.strip()
    ]
