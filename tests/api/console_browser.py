"""The console's browser tests' browser: the distribution's headless Chromium driven by Playwright (its own
browser download is never used), one per test process (the ``browser`` fixture of tests/api/conftest.py),
and a signed-in context on a served API (``Console``).

Chromium comes from ``scripts/install-chromium.sh`` (``make setup`` and ``.ci/run`` call it); without it the
tests skip and say how to install it. Screenshots go to ``build/console-screenshots/``
(``DXL_CONSOLE_SCREENSHOTS`` overrides; not committed) so a person can look.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.api.api_helpers import ApiEnv

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("DXL_CONSOLE_SCREENSHOTS") or REPO / "build/console-screenshots")


def _chromium() -> str | None:
    # The headless shell first: the same Blink without the full browser that `chromium --headless` starts
    # since Chromium 132, a third of the CPU for this module (14 s against 41 s on the development machine).
    names = ("chromium-headless-shell", "chromium", "chromium-browser")
    for candidate in (os.environ.get("DXL_CHROMIUM"), *names):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@contextmanager
def launched() -> Iterator[Any]:
    """One headless Chromium (the distribution's, by path); the test skips, saying why, without one."""
    executable = _chromium()
    if executable is None:
        pytest.skip(
            "no Chromium on PATH: the console's browser tests need the distribution's package "
            "(scripts/install-chromium.sh, i.e. apt-get install chromium-headless-shell; or set DXL_CHROMIUM)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
        chromium = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Console:
    """One signed-in browser context (its own sessionStorage) on the console."""

    def __init__(self, browser: Any, env: ApiEnv, who: str | None) -> None:
        self.env = env
        self.who = who or "anonymous"
        # A short viewport: full-page screenshots are then as tall as the content, not the window.
        self.context = browser.new_context(viewport={"width": 1280, "height": 480}, locale="en-US")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Every request the page makes, to check that nothing comes from outside this server.
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        #: Whether the page made any request by the last check (the listener is seen to work).
        self.requested = False
        self.page.goto(env.url + "/")
        self.page.wait_for_selector("#signin")
        if who is not None:
            self.page.fill("#token", env.tokens["demo-" + who])
            self.page.click("#signin button")
            self.page.wait_for_selector("main [data-ready]")

    def open(self, hash_: str) -> Any:
        self.page.goto(f"{self.env.url}/#/{hash_}")
        self.page.wait_for_selector("main [data-ready]", timeout=30_000)
        return self.page

    def nav(self) -> set[str]:
        return set(self.page.eval_on_selector_all("#nav a", "links => links.map(a => a.dataset.page)"))

    def shot(self, name: str) -> Path:
        """The page as it stands, for a person to look at after the run (nothing asserts on how it looks)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.who}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check(self) -> None:
        """No script error in the page and no request to another origin since the last check."""
        errors, self.errors = self.errors, []
        requests, self.requests = self.requests, []
        self.requested = self.requested or bool(requests)
        assert errors == [], f"script errors in the page: {errors}"
        outside = [u for u in requests if not u.startswith((self.env.url + "/", "data:", "blob:"))]
        assert outside == [], f"requests to other origins: {outside}"

    def landed(self) -> None:
        """Back on the page a sign-in lands on, in English, as a new sign-in would show it: for a tab kept
        signed in from an earlier test (``consoles(kept=...)``)."""
        if self.page.input_value("#lang") != "en":
            self.page.select_option("#lang", "en")
        self.page.goto(f"{self.env.url}/#/")
        self.page.wait_for_selector("main [data-ready]")

    def close(self) -> None:
        try:
            self.check()
            assert self.requested, "the page made no request"
        finally:
            self.context.close()


@contextmanager
def consoles(
    browser: Any, env: ApiEnv, kept: dict[str, Console] | None = None, *, failed: Callable[[], bool] = bool
) -> Iterator[Callable[..., Console]]:
    """A test's ``console(who)``: a signed-in context on ``env``, checked at the end (no script error, no
    request to another origin).

    Each call opens a new context and signs in, unless ``kept`` is given: then the first call for a principal
    in a test hands out the tab ``kept`` holds for it (signed in by an earlier test of the module, back on the
    page a sign-in lands on), and keeps the tab it opens for the next test. A context and its sign-in are some
    0.5 s of the browser's CPU, a page shown in a kept tab 0.1 s; the page keeps nothing of a test's but the
    token and the language the tests set back: every page reads the API again when shown. A test that needs
    what only a new sign-in gives (a principal's standing read again, the sign-in form, no handler or route
    left on the page) asks ``console(who, fresh=True)``; anonymous contexts are always new. A kept tab whose
    test failed (``failed()``) is closed, not kept."""
    opened: list[Console] = []
    handed: dict[str, Console] = {}

    def open_as(who: str | None, *, fresh: bool = False) -> Console:
        if kept is None or who is None or fresh or who in handed:
            opened.append(Console(browser, env, who))
            return opened[-1]
        if (tab := kept.pop(who, None)) is not None:
            tab.landed()
        else:
            tab = Console(browser, env, who)
        handed[who] = tab
        return tab

    try:
        yield open_as
    finally:
        for c in opened:
            c.close()
        for who, tab in handed.items():
            if failed():
                tab.context.close()
                continue
            try:
                tab.check()
            except AssertionError:
                tab.context.close()
                raise
            assert kept is not None
            kept[who] = tab


@contextmanager
def kept_tabs() -> Iterator[dict[str, Console]]:
    """The tabs a module's tests keep signed in (``consoles(kept=...)``), each checked and closed at the
    module's end."""
    kept: dict[str, Console] = {}
    try:
        yield kept
    finally:
        for tab in kept.values():
            tab.close()
