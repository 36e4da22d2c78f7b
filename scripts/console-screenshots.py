"""The README's console screenshots (docs/console/*.png), taken from a running `make run`.

    make run                                                       # in one terminal, on a fresh DXL_HOME
    .venv/bin/python -m tests.api.console_scenario http://127.0.0.1:8000 .dxl build/files
    .venv/bin/python scripts/console-screenshots.py http://127.0.0.1:8000 .dxl build/files docs/console

The scenario's exchanges (tests/api/console_scenario.py) on a fresh ledger, each page signed in as the role
the README names under it, in the distribution's headless Chromium (scripts/install-chromium.sh) at the
browser tests' 1280-pixel width, the whole page as tall as its content.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright


def chromium() -> str:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    sys.exit("no Chromium on PATH: scripts/install-chromium.sh installs the distribution's headless shell")


def main(url: str, home: Path, files: Path, out: Path) -> None:
    tokens = {k: v["token"] for k, v in json.loads((home / "secrets/demo-tokens.json").read_text()).items()}
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])

        def signed_in(who: str, lang: str = "en") -> Any:
            page = browser.new_context(viewport={"width": 1280, "height": 480}, locale="en-US").new_page()
            page.goto(url + "/")
            page.select_option("#lang", lang)
            page.fill("#token", tokens["demo-" + who])
            page.click("#signin button")
            page.wait_for_selector("main [data-ready]")
            return page

        def shot(page: Any, hash_: str, name: str) -> Any:
            page.goto(f"{url}/#/{hash_}")
            page.wait_for_selector(f"main [data-page='{hash_.split('/')[0].split('?')[0]}'][data-ready]")
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(out / f"{name}.png")
            return page

        def read(page: Any, path: str) -> Any:
            return page.evaluate(
                """async (path) => (await fetch(path, {headers: {Authorization:
                     `Bearer ${sessionStorage.getItem("dxl.token")}`}})).json()""",
                path,
            )

        auditor = signed_in("auditor")
        shot(auditor, "map", "map")
        shot(auditor, "scorecards?department=HRSS", "scorecards")
        shot(auditor, "inspections", "inspections")
        shot(signed_in("auditor", "zh"), "catalog", "catalog-zh")
        health = signed_in("health")
        (agreement,) = read(health, "/agreements")  # HEALTH's one: HRSS's social insurance records
        shot(health, f"resource/{agreement['resource_id']}", "resource")
        page = shot(health, f"agreement/{agreement['id']}", "timeline")
        shot(health, "demands", "demands")
        page.goto(f"{url}/#/verify")
        page.wait_for_selector("main [data-page=verify][data-ready]")
        for payload, want in (("tampered-acknowledged.csv", "MISMATCH"), ("acknowledged.csv", "MATCH")):
            page.set_input_files("#payload-file", str(files / payload))
            page.set_input_files("#manifest-file", str(files / "acknowledged.csv.manifest.json"))
            page.click("#verify-button")
            page.wait_for_selector(f"#verify-result[data-status={want}]", timeout=60_000)
            page.screenshot(path=str(out / f"verify-{want.lower()}.png"), full_page=True)
        hrss = signed_in("hrss")
        # The scenario's first inspection, a month to present: what HRSS presented, and what it still must.
        shot(hrss, f"inspection/{min(i['id'] for i in read(hrss, '/inspections'))}", "inspection")
        shot(signed_in("governor-2"), "governance", "governance")
        browser.close()


if __name__ == "__main__":
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("url", help="the running API, e.g. http://127.0.0.1:8000")
    parser.add_argument("home", type=Path, help="its DXL_HOME (the demo tokens are read there)")
    parser.add_argument("files", type=Path, help="where tests.api.console_scenario wrote its files")
    parser.add_argument("out", type=Path, help="where the screenshots go (docs/console)")
    args = parser.parse_args()
    main(args.url, args.home, args.files, args.out)
