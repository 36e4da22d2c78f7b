"""The console's writes are done once when a user clicks again after an answer was lost: in the real browser
(``console_browser``), the first answer of a real write is thrown away before the page reads it, as a network
drop would; the write sent again carries the same ``Idempotency-Key``, also after a reload of the tab, and the
API answers it from the first attempt. A write with a final answer forgets its key: the same one clicked again
later is a new write.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.api_helpers import ApiEnv, ok
from tests.api.console_browser import Console, consoles

pytestmark = pytest.mark.xdist_group("api-console")

#: Wraps the page's fetch so that the next POST reaches the server and is answered, but the page is told the
#: network failed, as when a proxy or a dropped connection loses the answer.
LOSE_NEXT_ANSWER = """() => {
  const real = window.fetch.bind(window);
  let lose = true;
  window.fetch = async (input, init = {}) => {
    const answer = await real(input, init);
    if (lose && init.method === "POST") {
      lose = false;
      await answer.text();
      throw new TypeError("Failed to fetch");
    }
    return answer;
  };
}"""


@pytest.fixture
def health(browser: Any, api_env: ApiEnv) -> Iterator[Console]:
    with consoles(browser, api_env) as open_as:
        yield open_as("health")


def _publish(page: Any, title: str, due: str) -> None:
    if not page.is_visible("#demand-title"):
        page.click("#publish summary")
    page.fill("#demand-title", title)
    page.fill("#demand-purpose", "benefit checks")
    page.fill("#demand-legal_basis", "Social Insurance Law, art. 16")
    page.select_option("#demand-addressee", "PSB")
    page.fill("#demand-due", due)
    page.click("#demand-publish")


def _published(env: ApiEnv, title: str) -> list[int]:
    demands = ok(env.call("GET", "/demands", "auditor", params={"limit": 500}))
    return sorted(d["id"] for d in demands if d["document"] and d["document"]["title"] == title)


def test_a_write_clicked_again_after_its_answer_was_lost_is_written_once(
    health: Console, api_env: ApiEnv
) -> None:
    title = f"Death records {secrets.token_hex(4)}"
    chain_now = int(api_env.setup.client.w3.eth.get_block("latest")["timestamp"])
    due = (datetime.fromtimestamp(chain_now, UTC).date() + timedelta(days=10)).isoformat()
    keys: list[str] = []  # the Idempotency-Key of each POST /demands the page sends

    def sent(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/demands"):
            keys.append(request.headers["idempotency-key"])

    health.page.on("request", sent)
    page = health.open("demands")
    page.evaluate(LOSE_NEXT_ANSWER)
    _publish(page, title, due)
    page.wait_for_selector("#demand-form .outcome .error", timeout=30_000)
    assert "The API did not answer" in page.inner_text("#demand-form .outcome")
    [first] = _published(api_env, title)  # the server wrote it; the page never heard
    # The clerk reloads the tab and publishes the same demand again: the API answers from the first attempt.
    page.reload()
    page.wait_for_selector("main [data-ready]", timeout=30_000)
    _publish(page, title, due)
    page.wait_for_selector("#published", timeout=30_000)
    assert _published(api_env, title) == [first]
    assert keys[0] == keys[1]
    assert page.inner_text("#published") == f"Published demand #{first}."
    assert page.locator("#demands-by-us article.demand", has_text=title).count() == 1
    assert page.is_visible("#replayed") and "without doing it twice" in page.inner_text("#replayed")
    page.select_option("#lang", "zh")
    page.wait_for_function("document.querySelector('#replayed').textContent.includes('未重复执行')")
    page.select_option("#lang", "en")
    assert page.evaluate("JSON.parse(sessionStorage.getItem('dxl.writes'))") == {}
    # Answered: the same demand published again later (the form, once sent, waits for a new page) is a new
    # demand, under a new key.
    page.reload()
    page.wait_for_selector("main [data-ready]", timeout=30_000)
    _publish(page, title, due)
    page.wait_for_selector("#published", timeout=30_000)
    second = int(page.inner_text("#published").split("#")[1].rstrip("."))
    assert _published(api_env, title) == [first, second]
    assert keys[2] != keys[1] and page.is_hidden("#replayed")
    page.reload()
    page.wait_for_selector("main [data-ready]", timeout=30_000)
    # A write left unanswered is forgotten at sign-out: the next principal's are its own.
    page.evaluate(LOSE_NEXT_ANSWER)
    _publish(page, title, due)
    page.wait_for_selector("#demand-form .outcome .error", timeout=30_000)
    assert len(page.evaluate("Object.keys(JSON.parse(sessionStorage.getItem('dxl.writes')))")) == 1
    page.click("#signout")
    page.wait_for_selector("#signin")
    assert page.evaluate("sessionStorage.getItem('dxl.writes')") is None
