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

    def close(self) -> None:
        assert self.errors == [], f"script errors in the page: {self.errors}"
        outside = [u for u in self.requests if not u.startswith((self.env.url + "/", "data:", "blob:"))]
        assert self.requests and outside == [], f"requests to other origins: {outside}"
        self.context.close()


@contextmanager
def consoles(browser: Any, env: ApiEnv) -> Iterator[Callable[[str | None], Console]]:
    """A test's ``console(who)``: a new signed-in context on ``env`` each call, each checked and closed at
    the end (no script error, no request to another origin)."""
    opened: list[Console] = []

    def open_as(who: str | None) -> Console:
        opened.append(Console(browser, env, who))
        return opened[-1]

    yield open_as
    for c in opened:
        c.close()
