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

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request, Response
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
# The files hold no department's data: revalidated (ETag, 304), not refused to caches as the API's answers
# are (api.headers adds the other security headers to every answer). Sent whole: see _WholeFile.
_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "Accept-Ranges": "none"}


@lru_cache(maxsize=128)
def _content_tag(path: Path, mtime_ns: int, size: int) -> str:
    """A strong ETag of the file's bytes (RFC 9110, 8.8.3), read again only when its stat changes: the
    stat-based tag Starlette writes changes on a copy or a checkout that leaves the bytes as they were."""
    return '"' + hashlib.sha256(path.read_bytes()).hexdigest() + '"'


def _not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag``: ``*`` or a list of tags, compared weakly as RFC 9110,
    13.1.2 requires (a cache may have stored the tag as ``W/"…"``)."""
    if if_none_match is None:
        return False
    asked = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in asked or tag in asked


def _file_answer(request: Request, target: Path, media_type: str) -> Response:
    """``target`` sent whole with its content's ETag, or ``304 Not Modified`` (no body, the same caching and
    security headers, RFC 9110, 15.4.5) when the browser's copy carries that tag."""
    stat = target.stat()
    headers = {**_HEADERS, "ETag": _content_tag(target, stat.st_mtime_ns, stat.st_size)}
    if _not_modified(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return _WholeFile(target, media_type=media_type, headers=headers, stat_result=stat)


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
    """Adds ``GET /`` and ``GET /console/{path}`` to ``app``, each answering ``HEAD`` as well (the headers of
    the ``GET``, ETag included, without the body: what ``curl -I`` asks; RFC 9110 has every server take
    it)."""

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def console_page(request: Request) -> Response:
        return _file_answer(request, ROOT / "index.html", _TYPES[".html"])

    @app.api_route("/console/{relative:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def console_asset(relative: str, request: Request) -> Response:
        target = console_file(relative)
        return _file_answer(request, target, _TYPES[target.suffix])
