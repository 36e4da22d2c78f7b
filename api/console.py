"""The web console: static pages (HTML, CSS, ES modules in ``api/console/``) served beside the API.

``GET /`` is the console's page and ``GET /console/<file>`` its assets; neither is an API operation (they are
left out of the OpenAPI document, so the role matrix and the fuzzer see only the API). The pages call the API
from the browser with the token the user signs in with; the API decides what each role may read or do.

Every answer carries a Content-Security-Policy that allows nothing but this origin: the console runs with no
resource from outside the machine, and an injected script or a link to a remote asset would be refused by
the browser rather than loaded. The pages put the API's data in the DOM as text nodes only (``js/dom.js``),
and the policy holds them to it: with Trusted Types required and no policy allowed to make them, every
assignment of a string as markup or script (``innerHTML``, ``insertAdjacentHTML``, ``document.write``, a
script's text) throws in a browser that knows Trusted Types, instead of parsing a department's text.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.types import Receive, Scope, Send

from api.errors import ApiError

ROOT = Path(__file__).with_name("console")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The files hold no department's data: revalidated (ETag), not refused to caches as the API's answers are
# (api.headers adds the other security headers to every answer). Sent whole: see _WholeFile.
_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "Accept-Ranges": "none"}


class _WholeFile(FileResponse):
    """A console file sent whole, whatever ``Range`` the request asks for (RFC 9110, 14.2: a server may
    ignore it). Starlette's own answer to a range it cannot serve is a 400 in plain text or a bare 416, not
    the service's error body with a code; a file of a few KiB has no part worth serving apart."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)


def console_file(relative: str) -> Path:
    """The file ``relative`` names under the console's directory.

    Raises:
        ApiError: NOT_FOUND for a path outside the directory, a directory, a type it does not serve, or a
            name the file system cannot hold.
    """
    missing = ApiError("NOT_FOUND", f"no console file {relative!r}")
    if "\x00" in relative:  # %00 in the URL: no file has it, and the file system calls raise ValueError on it
        raise missing
    root = ROOT.resolve()
    try:
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file() or target.suffix not in _TYPES:
            raise missing
    except OSError:  # a name or path longer than the file system takes (ENAMETOOLONG): no such file
        raise missing from None
    return target


def install_console(app: FastAPI) -> None:
    """Adds ``GET /`` and ``GET /console/{path}`` to ``app``."""

    @app.get("/", include_in_schema=False)
    def console_page() -> FileResponse:
        return _WholeFile(ROOT / "index.html", media_type=_TYPES[".html"], headers=_HEADERS)

    @app.get("/console/{relative:path}", include_in_schema=False)
    def console_asset(relative: str) -> FileResponse:
        target = console_file(relative)
        return _WholeFile(target, media_type=_TYPES[target.suffix], headers=_HEADERS)
