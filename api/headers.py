"""The headers every answer of the service carries, whichever route, error handler, middleware or the HTTP
protocol itself (:mod:`api.server`: a head too large or too late, a request that is not HTTP) wrote it.

* ``Cache-Control: no-store`` unless the answer set its own: an API answer is read with a token, and a copy
  kept by the browser or a proxy would outlive the token (and the sign-out of the console that read it).
  The console's own files (no department's data) set ``no-cache`` and are revalidated instead.
* ``Content-Security-Policy`` unless the answer set its own: a JSON or CSV answer needs no resource at all
  (``default-src 'none'``), so a value in it opened in a tab runs nothing; an HTML page that set none (the
  interactive OpenAPI docs, whose scripts come from elsewhere) keeps its scripts and may still not be framed.
* ``X-Frame-Options: DENY`` for browsers that ignore ``frame-ancestors``, ``X-Content-Type-Options: nosniff``
  so an answer is never run as another type than it says, ``Referrer-Policy: no-referrer`` so no address of
  the service goes to another site.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: An answer that is not a page: nothing may load, run or frame it.
DATA_CSP = b"default-src 'none'; frame-ancestors 'none'"
#: A page that set no policy of its own: it may not be framed.
PAGE_CSP = b"frame-ancestors 'none'"
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def missing_headers(present: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """The headers of the module's description that an answer whose headers are ``present`` (names in lower
    case) lacks: what the middleware adds to the app's answers and the HTTP protocol writes into the answers
    it makes before any route runs (:mod:`api.server`)."""
    missing = [(name, value) for name, value in _ALWAYS if name not in present]
    if b"cache-control" not in present:
        missing.append((b"cache-control", b"no-store"))
    if b"content-security-policy" not in present:
        page = present.get(b"content-type", b"").startswith(b"text/html")
        missing.append((b"content-security-policy", PAGE_CSP if page else DATA_CSP))
    return missing


class SecurityHeadersMiddleware:
    """Adds the headers of the module's description to every HTTP answer; those an answer set stay as set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers += missing_headers({name.lower(): value for name, value in headers})
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
