"""The web console in a real browser: the distribution's headless Chromium driven by Playwright (its own
browser download is never used), against the module's API server on the seed scenario of
``console_scenario``: every role signs in and sees what the API lets it see, an exchange is walked from the
catalog to its timeline, a good and a tampered file are verified in the page, and the page's WebCrypto
commitment passes the Python verifier's test vectors.

The browser and its signed-in contexts are ``console_browser``'s; screenshots of every page go where it says.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog

from api.catalog import search_text
from node.chain import LedgerClient
from node.compiler import load_artifact
from node.deploy import load_deployment
from node.tls import tls_context
from node.types import GovernanceAction, admission_data
from tests.api.api_helpers import (
    ApiEnv,
    b32,
    catalog_document,
    delivery_id_for,
    govern,
    issue,
    ok,
    pass_past,
    period,
    register,
    sql,
)
from tests.api.api_helpers import mine as mine_blocks
from tests.api.console_browser import REPO, SHOTS, Console, consoles, kept_tabs
from tests.api.console_scenario import Scenario, build
from tests.loopback import serving
from tests.pdf import pdf_text
from verifier.catalog import canonical_document, document_hash
from verifier.commitment import commit_payload, new_salt
from verifier.delivery_ids import new_delivery_id
from verifier.errors import ManifestError, PayloadFormatError
from verifier.hashing import HashAlgorithm
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import build_manifest, parse_manifest

pytestmark = pytest.mark.xdist_group("api-console")
#: The deployment's evaluation period: the scenario's inspections cover the whole period of its deliveries,
#: over, and a day passes on the shared node where 30 days could not (``tests/api/conftest.py``).
EVALUATION_PERIOD = 86400

VECTORS = REPO / "tests/verifier/vectors"
ALL_PAGES = {"map", "catalog", "verify", "scorecards", "demands", "inspections", "governance"}


@pytest.fixture(scope="module")
def scenario(api_env: ApiEnv) -> Scenario:
    return build(api_env.client, api_env.tokens, api_env.keystore, lambda moment: pass_past(api_env, moment))


@pytest.fixture(scope="module")
def files(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The delivered payloads, their manifests and tampered copies, as files a user would drop."""
    out = tmp_path_factory.mktemp("console-files")
    found = {}
    for name, d in (("acknowledged.csv", scenario.acknowledged), ("disputed.jsonl", scenario.disputed)):
        found[name] = out / name
        found[name].write_bytes(d.payload)
        found[f"{name}.manifest"] = out / f"{name}.manifest.json"
        found[f"{name}.manifest"].write_text(json.dumps(d.manifest), encoding="utf-8")
        found[f"tampered-{name}"] = out / f"tampered-{name}"
        found[f"tampered-{name}"].write_bytes(d.tampered())
    unsalted = {k: v for k, v in scenario.acknowledged.manifest.items() if k != "salt"}
    found["unsalted.manifest"] = out / "unsalted.manifest.json"
    found["unsalted.manifest"].write_text(json.dumps(unsalted), encoding="utf-8")
    # A CSV payload too large to be read whole in the page; sparse, so it costs no disk and is never read.
    found["huge.csv"] = out / "huge.csv"
    with found["huge.csv"].open("wb") as huge:
        huge.truncate(1 << 30)
    # Small files of more leaves than the page commits to (4,194,304): 4 MiB of empty lines, each a record,
    # and 5 MiB (sparse) under a manifest that cuts it into chunks of one byte.
    found["blank-lines.jsonl"] = out / "blank-lines.jsonl"
    found["blank-lines.jsonl"].write_bytes(b"\n" * ((1 << 22) + 1))
    found["five-mib"] = out / "five-mib"
    with found["five-mib"].open("wb") as five:
        five.truncate(5 << 20)
    one_byte_chunks = {**scenario.acknowledged.manifest, "chunking": {"format": "bytes", "chunk_size": 1}}
    found["one-byte-chunks.manifest"] = out / "one-byte-chunks.manifest.json"
    found["one-byte-chunks.manifest"].write_text(json.dumps(one_byte_chunks), encoding="utf-8")
    # And the 1 GiB file under a manifest whose one chunk is the whole file: read and hashed in one piece.
    one_chunk = {**scenario.acknowledged.manifest, "chunking": {"format": "bytes", "chunk_size": 1 << 31}}
    found["one-chunk.manifest"] = out / "one-chunk.manifest.json"
    found["one-chunk.manifest"].write_text(json.dumps(one_chunk), encoding="utf-8")
    return found


@pytest.fixture(scope="module")
def tabs(browser: Any, api_env: ApiEnv) -> Iterator[dict[str, Console]]:
    """The module's signed-in tabs, one a principal, handed from test to test (``consoles``)."""
    with kept_tabs() as kept:
        yield kept


@pytest.fixture
def console(
    browser: Any,
    api_env: ApiEnv,
    scenario: Scenario,
    tabs: dict[str, Console],
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Console]]:
    failed_before = request.session.testsfailed
    with consoles(
        browser, api_env, tabs, failed=lambda: request.session.testsfailed > failed_before
    ) as open_as:
        yield open_as


def test_a_page_checked_leaves_its_screenshot_for_a_person_to_look_at(console: Any) -> None:
    """Each page a test checks is saved as it stood, full length, under ``build/console-screenshots/``
    (``DXL_CONSOLE_SCREENSHOTS`` elsewhere), whatever the run: that is where a person looks after one."""
    saved = console("auditor").shot("map")
    assert saved.parent == SHOTS and saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert saved.stat().st_size > 10_000, saved.stat().st_size


def test_console_is_served_beside_the_api_from_this_origin_only(api_env: ApiEnv) -> None:
    page = api_env.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert api_env.client.get("/console/js/merkle.js").headers["content-type"].startswith("text/javascript")
    for bad in (
        "/console/js/nothing.js",
        "/console/%2e%2e/console.py",
        "/console/js",
        "/console/%00",
        "/console/js/a%00.js",
        # A name longer than the file system takes, and a path: not files either (the calls raised OSError).
        "/console/" + "a" * 300 + ".js",
        "/console/" + "a/" * 3000 + "a.js",
    ):
        answer = api_env.client.get(bad)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
    paths = ok(api_env.client.get("/openapi.json"))["paths"]
    assert "/" not in paths and not any(p.startswith("/console") for p in paths)
    # The API keeps its paths.
    assert ok(api_env.client.get("/healthz"))["status"] == "ok"


@pytest.mark.parametrize(
    "asked",
    [
        "bytes=0-10",  # a range: was a 206 of 11 bytes
        "bytes=0-0,-1",  # two ranges: was multipart/byteranges
        "bytes=5-2",  # malformed: was a 400 in plain text, no error code
        "bytes=abc",
        "items=0-1",
        "bytes=99999999-",  # past the end: was a 416 with an empty body
    ],
)
def test_a_console_file_is_sent_whole_whatever_range_a_client_asks_for(api_env: ApiEnv, asked: str) -> None:
    # Every refusal of the service is its error JSON with a code; a file of a few KiB has no range worth
    # serving, and a server may ignore Range (RFC 9110, 14.2), so none is refused either.
    whole = api_env.client.get("/console/js/dom.js")
    answer = api_env.client.get("/console/js/dom.js", headers={"Range": asked})
    assert answer.status_code == 200, f"{answer.status_code}: {answer.text[:200]}"
    assert answer.content == whole.content and "content-range" not in answer.headers
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["accept-ranges"] == "none" == whole.headers["accept-ranges"]


@pytest.mark.parametrize("path", ["/", "/console/js/dom.js", "/console/css/console.css"])
def test_a_console_file_the_browser_holds_is_revalidated_with_a_304(api_env: ApiEnv, path: str) -> None:
    """The files are sent with no-cache, so that a browser revalidates its copy: the service never answered
    If-None-Match with 304, and every page load downloaded every file again."""
    whole = api_env.client.get(path)
    tag = whole.headers["etag"]
    assert whole.status_code == 200 and tag == '"' + hashlib.sha256(whole.content).hexdigest() + '"'
    for asked in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = api_env.client.get(path, headers={"If-None-Match": asked, "Range": "bytes=0-10"})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag), asked
        assert "content-length" not in again.headers or again.headers["content-length"] == "0"
        for name in ("cache-control", "content-security-policy", "x-content-type-options", "x-frame-options",
                     "referrer-policy"):  # fmt: skip
            assert again.headers[name] == whole.headers[name], name
    # Another tag, or a tag of the file as it was before an edit: the file, whole, whatever Range is asked.
    for asked in ('"other"', '"' + hashlib.sha256(whole.content + b"\n").hexdigest() + '"'):
        changed = api_env.client.get(path, headers={"If-None-Match": asked, "Range": "bytes=0-10"})
        assert (changed.status_code, changed.content, changed.headers["etag"]) == (200, whole.content, tag)


@pytest.mark.parametrize("path", ["/", "/console/js/dom.js"])
def test_a_console_file_answers_head_with_the_headers_of_its_get(api_env: ApiEnv, path: str) -> None:
    """``curl -I`` (HEAD) shows a file's ETag and headers without its body; it was a 405 (RFC 9110, 9.3.2:
    a server answers HEAD as it answers GET, without the content)."""
    whole = api_env.client.get(path)
    head = api_env.client.head(path)
    assert (head.status_code, head.content) == (200, b"")
    for name in ("etag", "content-type", "content-length", "cache-control", "content-security-policy",
                 "accept-ranges", "x-content-type-options"):  # fmt: skip
        assert head.headers[name] == whole.headers[name], name
    again = api_env.client.head(path, headers={"If-None-Match": whole.headers["etag"]})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", whole.headers["etag"])
    refused = api_env.client.post(path)
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == {"GET", "HEAD"}


@pytest.mark.parametrize(
    ("method", "path", "who", "status"),
    [
        ("GET", "/", None, 200),
        ("GET", "/console/js/main.js", None, 200),
        ("GET", "/me", "auditor", 200),
        ("GET", "/resources/export?format=csv", "auditor", 200),
        ("GET", "/me", None, 401),
        ("GET", "/resources/999999", "hrss", 404),
        ("DELETE", "/resources", "hrss", 405),
        ("GET", "/docs", None, 200),
    ],
)
def test_every_answer_carries_the_security_headers(
    api_env: ApiEnv, method: str, path: str, who: str | None, status: int
) -> None:
    answer = api_env.call(method, path, who)
    assert answer.status_code == status
    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    if path == "/" or path.startswith("/console/"):
        # The console's files: this origin only, revalidated (they hold no department's data).
        assert "script-src 'self'" in csp and headers["cache-control"] == "no-cache"
    else:
        # Read with a token (or refused one): kept by no cache, past the token or the console's sign-out.
        assert headers["cache-control"] == "no-store"
        if not headers["content-type"].startswith("text/html"):  # the OpenAPI docs page keeps its scripts
            assert csp == "default-src 'none'; frame-ancestors 'none'"


def _refusal(vector: dict[str, Any]) -> str:
    """Why the Python verifier refuses a payload vector (its PayloadFormatError's reason)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload"
        path.write_bytes(bytes.fromhex(vector["content_hex"]))
        chunking = Chunking(PayloadFormat(vector["format"]), vector["chunk_size"])
        try:
            commit_payload(path, alg=HashAlgorithm.parse(vector["alg"]), salt=b"", chunking=chunking)
        except PayloadFormatError as refused:
            return refused.reason
    raise AssertionError(f"the Python verifier takes {vector['desc']}")


def test_webcrypto_commitment_passes_the_python_verifiers_vectors(console: Any) -> None:
    page = console(None).page
    payloads = json.loads((VECTORS / "payload_vectors.json").read_text())
    trees = json.loads((VECTORS / "tree_vectors.json").read_text())
    got = page.evaluate(
        """async ([payloads, trees]) => {
          const m = await import("/console/js/merkle.js");
          const out = {payloads: [], trees: []};
          for (const v of payloads) {
            try {
              const r = await m.commit(m.fromHex(v.content_hex), {alg: v.alg, salt: m.fromHex(v.salt),
                                                                 format: v.format, chunkSize: v.chunk_size});
              const leaves = Array.from({length: r.leafCount}, (_, i) => m.toHex(r.leaf(i)));
              out.payloads.push({root: m.toHex(r.root), leaves, records: r.recordCount});
              // The same through the file path the page uses (byte chunks read in slices).
              const blob = new Blob([m.fromHex(v.content_hex)]);
              const f = await m.commitBlob(blob, {alg: v.alg, salt: m.fromHex(v.salt), format: v.format,
                                                  chunkSize: v.chunk_size, batchBytes: v.chunk_size});
              out.payloads[out.payloads.length - 1].blobRoot = m.toHex(f.root);
            } catch (e) { out.payloads.push({error: e.name, reason: e.message}); }
          }
          for (const v of trees) {
            const salt = m.fromHex(v.salt);
            const leaves = await Promise.all(v.leaves.map(l => m.leafHash(v.alg, salt, m.fromHex(l))));
            out.trees.push(m.toHex(await m.treeRoot(v.alg, salt, leaves)));
          }
          return out;
        }""",
        [payloads, trees],
    )
    assert len(got["payloads"]) == len(payloads) > 30
    for vector, result in zip(payloads, got["payloads"], strict=True):
        if "want_err" in vector:
            # Refused for the reason `dxl commit` names, in the same words.
            assert result == {"error": "PayloadFormatError", "reason": _refusal(vector)}, vector["desc"]
        else:
            assert result == {
                "root": vector["want_root"],
                "leaves": vector["want_leaves_hex"],
                "records": vector["want_record_count"],
                "blobRoot": vector["want_root"],
            }, vector["desc"]
    assert {v["alg"] for v in trees} == {"sha256", "sm3"}
    for vector, root in zip(trees, got["trees"], strict=True):
        assert root == vector["want_root"], vector["desc"]
        assert root != vector.get("want_not_root"), vector["desc"]


def test_both_languages_have_every_string_and_the_switch_changes_the_text(console: Any) -> None:
    c = console("auditor")
    keys = c.page.evaluate(
        """async () => {
          const en = (await import("/console/js/strings/en.js")).default;
          const zh = (await import("/console/js/strings/zh.js")).default;
          return [Object.keys(en).sort(), Object.keys(zh).sort(), Object.values(zh).filter(v => !v).length];
        }"""
    )
    assert keys[0] == keys[1] and len(keys[0]) > 200 and keys[2] == 0
    c.open("catalog")
    assert c.page.inner_text("#nav a[data-page=catalog]") == "Catalog"
    c.page.select_option("#lang", "zh")
    c.page.wait_for_function("document.querySelector('#nav a[data-page=catalog]').textContent === '资源目录'")
    c.page.wait_for_selector("main [data-ready]")
    assert "共享类型" in c.page.inner_text("main")
    c.shot("catalog-zh")
    c.page.select_option("#lang", "en")


def revoke(env: ApiEnv, name: str) -> None:
    """Revoke a token in the API database (what `dxl token revoke` does)."""
    from api.auth import revoke_token
    from api.db import make_engine, session_factory, session_scope

    engine = make_engine(env.settings.effective_database_url)
    try:
        with session_scope(session_factory(engine)) as session:
            revoke_token(session, name=name)
    finally:
        engine.dispose()


def test_a_token_revoked_while_signed_in_returns_to_the_sign_in_form(
    console: Any, api_env: ApiEnv, files: dict[str, Path]
) -> None:
    c = console(None)
    # Revoked while a page is open: its next page load, or its next button, returns to the sign-in form.
    for name, act in (("console-revoked", "page"), ("console-revoked-button", "button")):
        c.page.fill("#token", issue(api_env, "auditor", name))
        c.page.click("#signin button")
        c.page.wait_for_selector("#nav a[data-page=catalog]")
        if act == "button":
            c.open("verify")
            c.page.set_input_files("#payload-file", str(files["acknowledged.csv"]))
            c.page.set_input_files("#manifest-file", str(files["acknowledged.csv.manifest"]))
        revoke(api_env, name)
        if act == "button":
            c.page.click("#verify-button")
        else:
            c.page.goto(f"{api_env.url}/#/catalog?q=x")
        c.page.wait_for_selector("#signin .error")
        # A page load still in flight, a link or the back button re-render the form: the reason stays.
        c.page.goto(f"{api_env.url}/#/map")
        assert "refused this token" in c.page.inner_text("#signin .error")
        assert c.nav() == set() and c.page.evaluate("sessionStorage.getItem('dxl.token')") is None


def test_a_bad_token_is_refused_and_nothing_is_shown(console: Any) -> None:
    c = console(None)
    c.page.fill("#token", "dxl_not-a-token")
    c.page.click("#signin button")
    c.page.wait_for_selector("#signin .error")
    assert "refused" in c.page.inner_text("#signin .error")
    assert c.nav() == set()
    # Pasted with text around it, or in another script: no header carries it; said so, not "no answer".
    c.page.fill("#token", "令牌 dxl_not-a-token")
    c.page.click("#signin button")
    c.page.wait_for_selector("#signin .error:has-text('This is not an API token')")
    assert c.nav() == set()
    assert c.page.evaluate("sessionStorage.getItem('dxl.token')") is None


@pytest.mark.parametrize(
    ("who", "pages"),
    [
        ("auditor", ALL_PAGES),
        # Every member reads the demand lists (governors read only: they publish and answer none).
        ("governor-1", {"catalog", "demands", "governance"}),
        ("hrss", {"map", "catalog", "verify", "scorecards", "demands", "inspections"}),
        ("samr", {"map", "catalog", "verify", "scorecards", "demands", "inspections"}),
    ],
)
def test_each_role_is_offered_exactly_the_pages_the_api_allows(
    console: Any, api_env: ApiEnv, who: str, pages: set[str]
) -> None:
    c = console(who)
    assert c.nav() == pages
    # The header names who signed in, by role and then department code, governor number or token name.
    header = {"auditor": "Auditor demo-auditor", "governor-1": "Governor #1"}
    assert c.page.inner_text("#who") == header.get(who, f"Department {who.upper()}")
    assert c.page.evaluate("sessionStorage.getItem('dxl.token')") == api_env.tokens["demo-" + who]
    for page in sorted(ALL_PAGES):
        c.open(page)
        if page in pages:
            assert c.page.query_selector(f"main [data-page={page}]") is not None
            c.shot(page)
        else:  # typed in by hand: refused in the page, as the API would refuse it
            assert c.page.query_selector("#forbidden") is not None, page
            status = api_env.call("GET", _probe(page), who).status_code
            assert status == 403, (page, status)


def _probe(page: str) -> str:
    return {
        "governance": "/governance/proposals",
        "map": "/audit/history",
        "scorecards": "/audit/scorecard",
        "inspections": "/inspections",
    }.get(page, "/agreements")


@pytest.mark.parametrize("who", ["auditor", "health", "samr", "governor-1"])
def test_a_resource_page_shows_the_exchanges_the_role_may_read(
    console: Any, api_env: ApiEnv, scenario: Scenario, who: str
) -> None:
    resource = _resource_of(api_env, scenario)
    c = console(who)
    c.open(f"resource/{resource}")
    assert "社会保险参保缴费信息" in c.page.inner_text("#resource-title")
    shown = set(
        c.page.eval_on_selector_all("#resource-agreements .agreement-link", "a => a.map(x => x.textContent)")
    )
    if who == "governor-1":
        assert c.page.query_selector("#exchanges-hidden") is not None
        assert api_env.call("GET", "/agreements", who).status_code == 403
        return
    allowed = {
        f"#{a['id']}" for a in ok(api_env.call("GET", "/agreements", who)) if a["resource_id"] == resource
    }
    assert shown == allowed
    # Its deliveries, every one the API lists for it, however many newer ones other resources have.
    delivered = set(c.page.eval_on_selector_all("#resource-deliveries code.hex", "c => c.map(x => x.title)"))
    listed = ok(api_env.call("GET", f"/deliveries?resource_id={resource}", who))
    assert delivered == {d["delivery_id"] for d in listed}
    assert (scenario.acknowledged.delivery_id in delivered) == (who in ("auditor", "health"))
    # And the receipts sent at volume, by their anchored batch, acknowledged.
    batches = c.page.eval_on_selector_all(
        "#resource-batches tbody tr", "r => r.map(x => x.innerText.split('\\t'))"
    )
    if who in ("auditor", "health"):
        assert [b[2:6] for b in batches] == [["HRSS", "HEALTH", "3", "acknowledged"]]
        assert (
            c.page.eval_on_selector("#resource-batches code.hex", "c => c.title")
            == scenario.receipt_batch["root"]
        )
    else:
        assert batches == []
    # Another department's agreement, typed in by hand: the page shows the API's refusal, nothing of it.
    if who == "samr":
        other = scenario.agreements["HEALTH<-HRSS"]
        refusal = api_env.call("GET", f"/agreements/{other}", who)
        assert refusal.status_code in (403, 404)
        c.open(f"agreement/{other}")
        assert refusal.json()["error"]["code"] in c.page.inner_text("main .error")
        assert c.page.query_selector("#timeline") is None
        c.open(f"resource/{resource}")
    assert (f"#{scenario.agreements['HEALTH<-HRSS']}" in shown) == (who in ("auditor", "health"))
    c.shot("resource")


def _resource_of(api_env: ApiEnv, scenario: Scenario) -> int:
    agreement = ok(api_env.call("GET", f"/agreements/{scenario.agreements['HEALTH<-HRSS']}", "auditor"))
    return int(agreement["resource_id"])


def test_walk_an_exchange_from_the_catalog_to_its_timeline_and_verify_its_files(
    console: Any, api_env: ApiEnv, scenario: Scenario, files: dict[str, Path]
) -> None:
    c = console("health")
    page = c.open("catalog")
    page.fill("#filter-text", "社会保险")
    # The unfiltered view stays in place, ready, until the hash change renders the filtered one: marked, it
    # cannot be taken for it (read just as the new view replaced it, its table counted 0 rows).
    page.eval_on_selector("main [data-page]", "view => { view.dataset.stale = 'true'; }")
    page.click("#catalog-filters button")
    page.wait_for_selector("main [data-ready]:not([data-stale]) #catalog-table")
    assert "q=" in page.evaluate("location.hash")  # the search is in the address, to share or go back to
    assert page.eval_on_selector_all("#catalog-table .resource-link", "a => a.length") == 1
    page.click("#catalog-table .resource-link")
    page.wait_for_selector("main [data-ready] #resource-agreements")
    agreement = scenario.agreements["HEALTH<-HRSS"]
    page.click(f"#resource-agreements a[href='#/agreement/{agreement}']")
    page.wait_for_selector("main [data-ready] #timeline")
    steps = page.eval_on_selector_all("#timeline .step", "s => s.map(x => x.dataset.event)")
    assert steps == [
        "AccessRequested", "RequestApproved", "AgreementConcluded", "GrantIssued", "DeliveryRecorded",
        "DeliveryAcknowledged", "ReceiptBatchAnchored", "ReceiptBatchAcknowledged",
        "GrantIssued", "DeliveryRecorded",  # the scores' evidence, after the inspected period
    ]  # fmt: skip
    # The terms both signed, readable, and matching the hash they signed.
    terms = ok(api_env.call("GET", f"/agreements/{agreement}", "health"))["terms"]
    assert page.get_attribute("#terms", "data-verified") == "true"
    shown = page.inner_text("#terms")
    for column in terms["document"]["csvw:column"]:
        assert column["csvw:name"] in shown
    assert "仅用于医保结算资格核验，到期删除" in shown and "distribute" in shown
    # Durations and actions in words, the signed value beside a duration: "PT4H" and "use" read as codes,
    # in Chinese too.
    document = terms["document"]
    assert (document["odrl:delayPeriod"], document["odrl:prohibition"]) == ("PT4H", ["distribute"])
    assert "every 1 day (P1D)" in shown and "4 hours (PT4H)" in shown
    page.select_option("#lang", "zh")
    page.wait_for_selector("main [data-ready] #terms")
    shown = page.inner_text("#terms")
    assert "每 1 天（P1D）" in shown and "4 小时（PT4H）" in shown and "分发（向外共享）" in shown
    assert "PT4H\n" not in shown and "\ndistribute" not in shown
    page.select_option("#lang", "en")
    page.wait_for_selector("main [data-ready] #terms")
    batch = page.locator("#timeline .step[data-event=ReceiptBatchAnchored]")
    assert scenario.receipt_batch["root"][:10] in batch.inner_text()
    batch.locator("summary").click()
    batch.locator("button").click()
    page.wait_for_selector(".step[data-event=ReceiptBatchAnchored] pre.provenance:has-text('leaf_count')")
    history = ok(api_env.call("GET", f"/audit/history?agreement={agreement}", "health"))["items"]
    shown_tx = page.eval_on_selector_all("#timeline .step .step-head code", "c => c.map(x => x.title)")
    assert [e["location"]["tx_hash"] for e in history] == shown_tx[2:]
    page.click("#timeline .step[data-event=DeliveryRecorded] details summary")
    c.shot("timeline")

    page.click("#timeline .verify-link")
    page.wait_for_selector("main [data-page=verify][data-ready]")
    assert page.input_value("#delivery-id") == scenario.acknowledged.delivery_id
    for payload, want in (("acknowledged.csv", "MATCH"), ("tampered-acknowledged.csv", "MISMATCH")):
        page.set_input_files("#payload-file", str(files[payload]))
        page.set_input_files("#manifest-file", str(files["acknowledged.csv.manifest"]))
        page.click("#verify-button")
        page.wait_for_selector(f"#verify-result[data-status={want}]", timeout=30_000)
        c.shot(f"verify-{want.lower()}")
    # The tampered file's third line (leaf 2, record 2 after the header) is named, with its content.
    assert page.inner_text("#differing") == "2"
    # The manifest's signer and the delivery's parties by the names the ledger gives them, not addresses.
    assert page.inner_text("#signer").endswith(" (HRSS's signing key)")
    assert page.inner_text("#recorded").startswith("HRSS → HEALTH · block ")
    rows = page.eval_on_selector_all("#differing-records tbody tr", "r => r.map(x => x.innerText)")
    assert len(rows) == 1 and rows[0].startswith("2\t2\t") and "9" in rows[0]
    # Each finding in the page's language, the API's own message beneath it.
    assert "ROOT_MISMATCH The root computed from the payload differs" in page.inner_text("#findings")
    # Bad inputs are named in the user's words, never left to fail as a script error ("TypeError: ...").
    for payload, manifest, delivery, want in (
        ("acknowledged.csv", "acknowledged.csv", "", "The manifest file is not JSON"),
        ("acknowledged.csv", "unsalted.manifest", "", "lacks a valid “salt”"),
        ("acknowledged.csv", "acknowledged.csv.manifest", "0x1234", "0x followed by 64 hexadecimal digits"),
        ("huge.csv", "acknowledged.csv.manifest", "", "too large to verify in the browser"),
        # Its one chunk, the whole gigabyte, was read into the page's memory and copied to be hashed: no
        # answer within the 30 s the test waits.
        ("huge.csv", "one-chunk.manifest", "", "chunks of 2048 MiB, too large to hash in the browser"),
        # Before, the page hashed on for minutes, and ran out of memory a little further.
        ("blank-lines.jsonl", "disputed.jsonl.manifest", "", "more than 4,194,304 leaves"),
        (
            "five-mib",
            "one-byte-chunks.manifest",
            "",
            "more than 4,194,304 leaves under its manifest's chunking (bytes)",
        ),
    ):
        page.set_input_files("#payload-file", str(files[payload]))
        page.set_input_files("#manifest-file", str(files[manifest]))
        page.fill("#delivery-id", delivery)
        page.click("#verify-button")
        assert want in page.locator("#verify-out .error").inner_text(), (payload, manifest)

    # The disputed exchange, as CIVIL sees it: the dispute closes its timeline.
    civil = console("civil")
    civil.open(f"agreement/{scenario.agreements['CIVIL<-PSB']}")
    # Requested by hash alone: no terms to show, and the page says so.
    assert civil.page.get_attribute("#terms", "data-verified") == "none"
    assert civil.page.eval_on_selector_all("#timeline .step", "s => s.map(x => x.dataset.event)")[-1] == (
        "DeliveryDisputed"
    )
    # Dropped on the page this time, both files at once, as a user drags them from a folder; the payload's
    # name ends in .json too, and X.manifest.json is the manifest of X.
    civil.open("verify")
    civil.page.evaluate(
        """([payload, manifest]) => {
          const drop = new DataTransfer();
          drop.items.add(new File([new TextEncoder().encode(payload)], "disputed.json"));
          drop.items.add(new File([manifest], "disputed.json.manifest.json"));
          document.getElementById("dropzone").dispatchEvent(new DragEvent("drop", {dataTransfer: drop}));
        }""",
        [files["disputed.jsonl"].read_text(encoding="utf-8"), files["disputed.jsonl.manifest"].read_text()],
    )
    assert civil.page.inner_text("#chosen").endswith("disputed.json · Manifest: disputed.json.manifest.json")
    civil.page.click("#verify-button")
    civil.page.wait_for_selector("#verify-result[data-status=ACK_DIFFERS]", timeout=30_000)


def _verified_in_page(
    page: Any, folder: Path, payload: bytes, manifest: dict[str, Any]
) -> tuple[str, list[str]]:
    """The status and finding codes the verify page shows for `payload` and `manifest`, chosen as files (each
    pair in a folder of its own: Chromium refuses to read a chosen file changed since)."""
    folder.mkdir()
    (folder / "payload").write_bytes(payload)
    (folder / "payload.manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    page.set_input_files("#payload-file", str(folder / "payload"))
    page.set_input_files("#manifest-file", str(folder / "payload.manifest.json"))
    page.eval_on_selector("#verify-out", "out => out.replaceChildren()")
    page.click("#verify-button")
    page.wait_for_selector("#verify-result", timeout=30_000)
    codes = page.eval_on_selector_all("#findings li code", "c => c.map(x => x.textContent)")
    return page.get_attribute("#verify-result", "data-status"), sorted(codes)


def test_the_catalog_is_searched_by_owner_share_type_and_text_as_the_api_answers(
    console: Any, api_env: ApiEnv
) -> None:
    """The catalog's three filters, chosen in the form and alone or together: the entries listed are those
    the API lists for the same query, in its order (the browser tests searched by text alone)."""
    ok(api_env.call("POST", "/audit/index", "auditor"))  # the page and the API below read one index state
    c = console("hrss")
    page = c.open("catalog")
    departments = ok(api_env.call("GET", "/departments", "hrss"))
    hrss = str(next(d["id"] for d in departments if d["code"] == "HRSS"))

    def search(owner: str, share_type: str, text: str) -> list[int]:
        page.select_option("#filter-owner", owner)
        page.select_option("#filter-share", share_type)
        page.fill("#filter-text", text)
        # Marked, the view the search replaces cannot be taken for its result (as in the walk above).
        page.eval_on_selector("main [data-page]", "view => { view.dataset.stale = 'true'; }")
        page.click("#catalog-filters button")
        page.wait_for_selector("main [data-ready]:not([data-stale]) :is(#catalog-table, #catalog-empty)")
        if page.query_selector("#catalog-empty") is not None:
            return []
        cells = "#catalog-table tbody tr td:first-child"
        return [int(x) for x in page.eval_on_selector_all(cells, "td => td.map(x => x.textContent)")]

    queries = [(hrss, "", ""), ("", "conditional", ""), (hrss, "conditional", ""), ("", "", "社会保险"),
               (hrss, "unconditional", "社会保险"), ("", "not_shared", "")]  # fmt: skip
    seen = []
    for owner, share_type, text in queries:
        params = {k: v for k, v in (("owner", owner), ("share_type", share_type), ("q", text)) if v}
        want = [
            r["id"] for r in ok(api_env.call("GET", "/resources", "hrss", params={**params, "limit": 500}))
        ]
        assert search(owner, share_type, text) == want, params
        # The search is in the address, to share or go back to.
        assert all(f"{k}=" in page.evaluate("location.hash") for k in params), params
        seen.append(len(want))
    # The filters chose among the entries: some queries list none, none lists them all.
    everything = ok(api_env.call("GET", "/resources", "hrss", params={"limit": 500}))
    assert 0 in seen and 0 < max(seen) < len(everything), (seen, len(everything))
    c.shot("catalog-filtered")


def test_the_pages_findings_word_a_count_as_the_verifier_does(
    console: Any, api_env: ApiEnv, scenario: Scenario, tmp_path: Path
) -> None:
    """A payload of one record checked against the manifest of a longer one: the page words its findings as
    the verifier does (POST /verify sent the payload itself), "1 byte", "1 leaf", "1 record"; it wrote "1
    bytes", "1 leaves", "1 records" where the verifier's words had them agree."""
    page = console("auditor").open("verify")
    jsonl = scenario.disputed
    body = {"manifest": jsonl.manifest, "payload_base64": base64.b64encode(b"1").decode()}
    verdict = ok(api_env.call("POST", "/verify", "auditor", json=body))
    counts = ("SIZE_MISMATCH", "LEAF_COUNT_MISMATCH", "RECORD_COUNT_MISMATCH")
    verifier = {f["code"]: f["message"] for f in verdict["findings"] if f["code"] in counts}
    assert verifier["RECORD_COUNT_MISMATCH"].startswith("payload has 1 record, "), verifier
    _verified_in_page(page, tmp_path / "one", b"1", jsonl.manifest)
    shown = page.eval_on_selector_all(
        "#findings li",
        "ls => ls.map(l => [l.querySelector('code').textContent, l.querySelector('span').textContent])",
    )
    assert {code: message for code, message in shown if code in counts} == verifier, shown


def test_the_page_judges_a_payload_and_its_manifest_as_the_verifier_does(
    console: Any, api_env: ApiEnv, scenario: Scenario, tmp_path: Path
) -> None:
    # The page sends the API the root it computed, not the payload; POST /verify sent the payload itself runs
    # the verifier's own check (as dxl verify does), and the page must come to the same verdict for the same
    # reasons. A JSON Lines or CSV payload without its final LF has the leaves and root of the one delivered,
    # its size alone differing (the page said MATCH); a manifest whose leaf hashes were altered is UNTRUSTED,
    # not a payload that differs (the page said MISMATCH of the very file delivered).
    page = console("auditor").open("verify")
    csv, jsonl = scenario.acknowledged, scenario.disputed
    altered = [*csv.manifest["leaf_hashes"]]
    altered[1] = "0x" + "11" * 32
    cases = {
        "delivered": (csv.payload, csv.manifest, "MATCH"),
        "tampered": (csv.tampered(), csv.manifest, "MISMATCH"),
        "csv without its final LF": (csv.payload.removesuffix(b"\n"), csv.manifest, "MISMATCH"),
        "jsonl without its final LF": (jsonl.payload.removesuffix(b"\n"), jsonl.manifest, "MISMATCH"),
        "a leaf hash altered": (csv.payload, {**csv.manifest, "leaf_hashes": altered}, "UNTRUSTED"),
        "a leaf hash dropped": (csv.payload, {**csv.manifest, "leaf_hashes": altered[:-1]}, "UNTRUSTED"),
    }
    for n, (name, (payload, manifest, want)) in enumerate(cases.items()):
        body = {"manifest": manifest, "payload_base64": base64.b64encode(payload).decode()}
        verdict = ok(api_env.call("POST", "/verify", "auditor", json=body))
        verifier = (verdict["status"], sorted(f["code"] for f in verdict["findings"]))
        assert verifier[0] == want, name
        assert _verified_in_page(page, tmp_path / str(n), payload, manifest) == verifier, name
    # A manifest file that names its root twice, a forged one first: the verifier refuses it as malformed (a
    # reader may show the first, the check would read the last); the page read the last and said MATCH.
    text = json.dumps(csv.manifest).replace('"root": ', f'"root": "0x{"ab" * 32}", "root": ', 1)
    with pytest.raises(ManifestError, match="names the key 'root' twice"):
        parse_manifest(text)
    (tmp_path / "twice.manifest.json").write_text(text, encoding="utf-8")
    (tmp_path / "twice").write_bytes(csv.payload)
    page.set_input_files("#payload-file", str(tmp_path / "twice"))
    page.set_input_files("#manifest-file", str(tmp_path / "twice.manifest.json"))
    page.click("#verify-button")
    assert "names “root” twice" in page.locator("#verify-out .error").inner_text()
    assert page.query_selector("#verify-result") is None


def test_a_large_record_payload_is_verified_with_the_page_responsive_and_its_memory_bounded(
    console: Any, api_env: ApiEnv, scenario: Scenario, tmp_path: Path
) -> None:
    # 524,288 JSON lines of 100 bytes (50 MiB): a digest per line and per inner node, a million in all. The
    # page asked them all at once, and no timer, click or repaint of the page was served for the 20 to 33 s
    # they took, its heap grown by some 650 bytes a line; it asks 1,024 at a time now and gives the event loop
    # a turn every 40 ms (the longest wait 170 to 330 ms here, the heap grown by 80 to 100 bytes a line).
    # Half that file tells the same: both failures grow with the lines (the wait by some 50 us a line, over
    # 10 s for these 262,144 against the second allowed; the heap by its bytes a line, which the bound
    # divides by: 120 to 150 here, what V8 holds whatever the size weighing more), and the page's batches and
    # turns are the same hundreds; the whole file was 4 s of the browser's CPU more.
    lines = 1 << 18
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"".join(b'{"n":"%010d","pad":"%s"}\n' % (i, b"x" * 77) for i in range(lines)))
    committed = commit_payload(big, salt=new_salt(), chunking=Chunking(PayloadFormat.JSONL))
    manifest = build_manifest(
        committed, delivery_id=new_delivery_id(1), include_leaf_hashes=False
    ).to_dict()  # no leaf hashes: 262,144 of them (17.6 MB) would pass the API's 8 MiB body limit
    (tmp_path / "big.jsonl.manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    # A tab of its own: its heap is measured, a route and a handler set on its page.
    c = console("auditor", fresh=True)
    page = c.open("verify")
    cdp = c.context.new_cdp_session(page)
    page.set_input_files("#payload-file", str(big))
    page.set_input_files("#manifest-file", str(tmp_path / "big.jsonl.manifest.json"))
    page.evaluate(
        """() => {
          // The longest the page went without a turn of its event loop for a timer asking one every 50 ms.
          let last = performance.now();
          window.__longest = 0;
          window.__ticking = setInterval(() => {
            const now = performance.now();
            window.__longest = Math.max(window.__longest, now - last);
            last = now;
          }, 50);
        }"""
    )
    before = cdp.send("Runtime.getHeapUsage")["usedSize"]
    page.click("#verify-button")
    peak, status = before, None
    while status is None:
        peak = max(peak, cdp.send("Runtime.getHeapUsage")["usedSize"])
        shown = cdp.send(
            "Runtime.evaluate", {"expression": "document.querySelector('#verify-result')?.dataset.status"}
        )
        status = shown["result"].get("value")
        time.sleep(0.05)
    longest = page.evaluate("clearInterval(window.__ticking) || Math.max(window.__longest, 0)")
    # The root the Python verifier computed, and the API's verdict on it.
    body = {"manifest": manifest, "commitment": manifest["root"]}
    verdict = ok(api_env.call("POST", "/verify", "auditor", json=body))
    codes = page.eval_on_selector_all("#findings li code", "c => c.map(x => x.textContent)")
    assert (status, sorted(codes)) == (verdict["status"], sorted(f["code"] for f in verdict["findings"]))
    assert (
        page.get_attribute("#verify-compare tbody tr:first-child td:nth-child(3) code", "title")
        == manifest["root"]
    )
    assert longest < 1000, f"the page went {longest:.0f} ms without a turn of its event loop"
    grew = (peak - before) / lines
    assert grew < 400, f"the page's heap grew {grew:.0f} bytes a line ({(peak - before) >> 20} MiB)"

    # Verify clicked again with other files while a large one commits: the answer is about the files chosen
    # last, and the run before, superseded, does not replace it when it ends (with its own POST /verify).
    # The superseded run is a quarter of the large file (65,536 lines, under a second of the page's time;
    # the whole file again was seconds of a core) and its POST /verify is held until the last files' answer is
    # shown: it ends after that answer whatever the machine's load.
    part = tmp_path / "part.jsonl"
    with big.open("rb") as whole:
        part.write_bytes(b"".join(whole.readline() for _ in range(lines // 4)))
    committed = commit_payload(part, salt=new_salt(), chunking=Chunking(PayloadFormat.JSONL))
    superseded = build_manifest(
        committed, delivery_id=new_delivery_id(1), include_leaf_hashes=False
    ).to_dict()
    (tmp_path / "part.jsonl.manifest.json").write_text(json.dumps(superseded), encoding="utf-8")
    small = tmp_path / "small.csv"
    small.write_bytes(scenario.acknowledged.payload)
    (tmp_path / "small.csv.manifest.json").write_text(
        json.dumps(scenario.acknowledged.manifest), encoding="utf-8"
    )
    held: list[Any] = []

    def hold_the_superseded(route: Any) -> None:
        if superseded["root"] in (route.request.post_data or ""):
            held.append(route)
        else:
            route.continue_()

    page.route("**/verify", hold_the_superseded)
    page.set_input_files("#payload-file", str(part))
    page.set_input_files("#manifest-file", str(tmp_path / "part.jsonl.manifest.json"))
    asked: list[str] = []
    page.on("requestfinished", lambda r: asked.extend([r.url] if r.url.endswith("/verify") else []))
    page.click("#verify-button")
    page.wait_for_selector("#verify-working")
    page.set_input_files("#payload-file", str(small))
    page.set_input_files("#manifest-file", str(tmp_path / "small.csv.manifest.json"))
    page.click("#verify-button")
    page.wait_for_selector("#verify-result[data-status=MATCH]", timeout=30_000)
    deadline = time.monotonic() + 120
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(held) == 1, "the superseded run never asked for its verdict"
    held[0].continue_()
    while len(asked) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(asked) == 2, "the superseded run never ended"
    page.wait_for_timeout(500)
    assert page.get_attribute("#verify-result", "data-status") == "MATCH"
    assert (
        page.get_attribute("#verify-compare tbody tr:first-child td:nth-child(3) code", "title")
        == (scenario.acknowledged.manifest["root"])
    )


def test_scorecards_chart_the_apis_indicators_and_export_them(console: Any, api_env: ApiEnv) -> None:
    c = console("auditor")
    page = c.open("scorecards?department=HRSS")
    card = ok(api_env.call("GET", "/audit/scorecard?department=HRSS", "auditor"))
    # No From day: the card counts from the ledger's first block, and says so (it read "HRSS: ... - now").
    assert page.inner_text("#score-title") == "HRSS: everything up to now"
    assert page.inner_text("#share-rate") == f"{card['catalog_shared']['rate'] * 100:.1f}%"
    assert page.eval_on_selector_all("#scorecard svg.chart", "s => s.length") >= 6
    by_type = card["catalog_shared"]["by_share_type"]
    shown = page.inner_text("#share-rate-by-type")
    assert by_type and all(
        f"{x['shared']}/{x['total']} ({x['rate'] * 100:.1f}%)" in shown for x in by_type.values()
    )
    # Every demand received is accounted for: answered with a resource (met once it is delivered), declined or
    # not answered yet (an answered demand not yet met counted as received, and as none of the others).
    demands = card["practice"]["demands_received"]
    bars = page.eval_on_selector_all(
        "#score-practice svg.chart:first-of-type g.bar",
        "g => g.map(x => [x.querySelector('.label').textContent, x.querySelector('.value').textContent])",
    )
    assert bars == [
        ["Demands received", str(demands["total"])],
        ["Answered with a resource", str(demands["new_resource"] + demands["existing_resource"])],
        ["Met (delivered since)", str(demands["met"])], ["Declined", str(demands["declined"])],
        ["Not answered yet", str(demands["open"])], ["Overdue", str(demands["overdue"])],
    ]  # fmt: skip
    assert demands["existing_resource"] > demands["met"]  # HRSS's answer to HEALTH, delivered before it
    with page.expect_download() as download:
        page.click("#export-csv")
    raw = Path(download.value.path()).read_bytes()
    # UTF-8 behind a byte order mark, as the catalog's CSV export: Excel reads the file as UTF-8 only so.
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text.startswith("indicator,value\r\n")
    assert f"requests.rejected,{card['requests']['rejected']}\r\n" in text
    assert card["requests"]["rejected"] >= 1
    # The lists of records, each item's fields by its index (they read "[object Object]"): the inspections
    # covered and the overdue deliveries, one row a field.
    assert "[object Object]" not in text
    checked = card["practice"]["inspections"]
    assert checked["inspected"] and checked["overdue_deliveries"]
    for name in ("inspected", "overdue_deliveries"):
        for i, item in enumerate(checked[name]):
            for field, value in item.items():
                cell = "" if value is None else str(value)
                assert f"practice.inspections.{name}[{i}].{field},{cell}\r\n" in text, (name, i, field)
    # Auditors also see every department side by side, each row the API's scorecard of that department.
    row = page.eval_on_selector("#score-comparison tr[data-department=HRSS]", "r => r.innerText").split("\t")
    assert row[0] == "HRSS" and row[3] == str(card["requests"]["received"])
    assert row[5] == str(card["requests"]["rejected"])
    # And their sharing practice: demands met and overdue, the scores received (average and count), inspection
    # outcomes, each the API's (the side-by-side table had none of them).
    shown = dict(
        page.eval_on_selector_all(
            "#score-comparison-practice tbody tr", "r => r.map(x => [x.dataset.department, x.innerText])"
        )
    )

    def average(scores: dict[str, Any], name: str) -> str:
        return "—" if scores[name] is None else f"{scores[name]:.2f} ({scores['count']})"

    for code in shown:
        p = ok(api_env.call("GET", f"/audit/scorecard?department={code}", "auditor"))["practice"]
        demands, given, taken, checked = (
            p["demands_received"], p["evaluations"]["as_provider"], p["evaluations"]["as_consumer"],
            p["inspections"],
        )  # fmt: skip
        assert shown[code].split("\t") == [
            code, f"{demands['met']}/{demands['total']}", str(demands["overdue"]),
            *(average(given, k) for k in ("timeliness", "completeness", "accuracy")),
            average(taken, "purpose_compliance"),
            *(str(checked[k]) for k in ("passed", "failed", "not_presented", "overdue")),
        ], code  # fmt: skip
    assert "HRSS" in shown and any(c.count("(") for c in shown.values())  # a score received is shown
    # Every column named as a heading is, capitalised (a chart's labels, "received", headed most of them).
    heads = page.eval_on_selector_all(
        "#score-comparison th, #score-comparison-practice th", "t => t.map(x => x.textContent)"
    )
    assert len(heads) == 22 and [h for h in heads if not h[0].isupper()] == [], heads
    # In Chinese the comparison's column names are Chinese: the file says it is UTF-8 (a byte order mark),
    # so that a spreadsheet does not read them in the locale's code page.
    page.select_option("#lang", "zh")
    page.wait_for_selector("#score-comparison")
    with page.expect_download() as download:
        page.click("#export-comparison")
    raw = Path(download.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + "部门,".encode())
    assert "\r\nHRSS," in raw.decode("utf-8-sig")
    header = raw.decode("utf-8-sig").split("\r\n")[0].split(",")
    assert header[-10:-8] == ["需求已满足", "需求逾期"] and header[-1] == "抽中且逾期"
    # The PDF is the service's, fetched with the token and in the page's language: named by department and
    # period, the card's figures in it.
    with page.expect_download() as download:
        page.click("#export-pdf")
    assert re.fullmatch(r"scorecard-HRSS-1970-01-01-\d{4}-\d\d-\d\d\.pdf", download.value.suggested_filename)
    lines = pdf_text(Path(download.value.path()).read_bytes())
    assert lines[:2] == ["考核评分", f"部门：HRSS (id {card['department']['id']})"], lines[:2]
    assert f"requests.rejected {card['requests']['rejected']}" in (" ".join(x.split()) for x in lines)
    page.select_option("#lang", "en")
    page.wait_for_selector("#score-comparison")
    c.shot("scorecards-hrss")
    # Print / PDF: the charts print, bars and all; the header and the buttons do not.
    page.emulate_media(media="print")
    assert page.locator("#scorecard svg.chart g.bar").first.is_visible()
    assert not page.locator("header.bar").is_visible() and not page.locator("#export-csv").is_visible()
    page.emulate_media(media="screen")
    # A department may read its own scorecard and the consortium's, and is offered nothing else.
    hrss = console("hrss")
    hrss.open("scorecards")
    options = hrss.page.eval_on_selector_all("#score-department option", "o => o.map(x => x.value)")
    assert options == ["", "HRSS"]
    # A From day after today and no To day: a period that ends (now) before it starts, said so in the page.
    hrss.open("scorecards?from=2999-01-01")
    assert hrss.page.inner_text("main .error").startswith("The From day is after today")
    assert api_env.call("GET", "/audit/scorecard?department=PSB", "hrss").status_code == 403


def _days(seconds: float | None) -> str:
    """A duration as the scorecard page writes it (``days`` in ``api/console/js/pages/scorecards.js``)."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        # Math.round: a half second up (a median of 0 s and 1 s decisions reads 1 s), not Python's to even.
        return f"{math.floor(seconds + 0.5)} s"
    return f"{seconds / 3600:.1f} hours" if seconds < 86400 else f"{seconds / 86400:.2f} days"


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def test_scorecard_charts_give_requests_response_times_against_the_deadline_and_delivery_rates(
    console: Any, api_env: ApiEnv
) -> None:
    """The charts the issue names beside the share rates and demand met: requests, the response time against
    the deadline, deliveries and the acknowledgement and dispute rates, each bar the API's figure for the same
    department (or the consortium), as the share-rate and demand charts are held above."""
    c = console("auditor")
    covered = {"decisions": 0, "disputed": 0, "acknowledged": 0}
    for department in ("HRSS", "PSB", "HEALTH", None):
        query = "" if department is None else f"?department={department}"
        card = ok(api_env.call("GET", f"/audit/scorecard{query}", "auditor"))
        page = c.open(f"scorecards{query}")

        def chart(title: str, page: Any = page) -> list[list[str]]:
            found: list[list[str]] = page.eval_on_selector_all(
                f'#scorecard svg.chart[aria-label="{title}"] g.bar',
                "g => g.map(x => [x.querySelector('.label').textContent, "
                "x.querySelector('.value').textContent])",
            )
            return found

        requests, rt, d = card["requests"], card["response_time_seconds"], card["deliveries"]
        assert chart("Requests received") == [
            ["Received", str(requests["received"])], ["Approved", str(requests["approved"])],
            ["Approved on arrival", str(requests["auto_approved"])], ["Rejected", str(requests["rejected"])],
            ["Pending", str(requests["pending"])], ["Overdue", str(requests["overdue"])],
        ], department  # fmt: skip
        timed = f"Response time ({rt['decisions']} decisions)"
        assert chart(timed) == [["Median", _days(rt["median"])], ["90th percentile", _days(rt["p90"])]]
        marker = page.eval_on_selector(
            f'#scorecard svg.chart[aria-label="{timed}"] .marker-label', "m => m.textContent"
        )
        assert marker == f"deadline: {card['response_deadline_working_days']} working days", department
        assert chart("Deliveries") == [
            ["Sent", str(d["sent"])], ["Received", str(d["received"])],
            ["Acknowledged", str(d["acknowledged"])], ["Disputed", str(d["disputed"])],
            ["Refused", str(card["refused_deliveries"]["total"])],
        ], department  # fmt: skip
        dispute = _pct(d["disputed"] / d["sent"]) if d["sent"] else "—"
        assert chart("Acknowledgement and dispute rates") == [
            ["Acknowledgement rate", _pct(d["acknowledgement_rate"])], ["Dispute rate", dispute],
        ], department  # fmt: skip
        covered = {k: v + (rt[k] if k == "decisions" else d[k]) for k, v in covered.items()}
    # The seed exchanges give every chart something to show: decisions timed, deliveries acknowledged and one
    # disputed (charts of zeros would hold nothing of how the page reads the card).
    assert all(covered.values()), covered


def test_a_scorecards_period_starts_after_now_by_the_chains_clock_not_the_browsers(
    console: Any, api_env: ApiEnv
) -> None:
    """A period with no To day ends now, the chain's latest block time: the API refuses one starting after it.
    The page refused it by the browser's clock, so a browser two days behind the chain refused the chain's
    today as a From day; it now asks the API, and says the API's refusal in the user's words."""
    chain_now = int(api_env.setup.client.w3.eth.get_block("latest")["timestamp"])
    today = datetime.fromtimestamp(chain_now, UTC).date()
    # A tab of its own: its clock is moved.
    c = console("auditor", fresh=True)
    c.page.clock.set_system_time(datetime.fromtimestamp(chain_now - 2 * 86400, UTC))
    page = c.open(f"scorecards?from={today.isoformat()}")
    assert page.query_selector("#score-title") is not None and page.query_selector(".error") is None
    c.page.clock.set_system_time(datetime.fromtimestamp(chain_now + 3 * 86400, UTC))
    page = c.open(f"scorecards?from={(today + timedelta(days=2)).isoformat()}")
    assert page.query_selector("#score-title") is None
    assert "The From day is after today by the chain's clock" in page.inner_text("main")


def test_the_exchange_map_draws_who_exchanged_with_whom(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    c = console("auditor")
    page = c.open("map")
    edges = set(page.eval_on_selector_all("#exchange-map .edge", "e => e.map(x => x.dataset.edge)"))
    assert {"HRSS>HEALTH", "PSB>CIVIL"} <= edges
    # Its volume counts the receipts anchored in batches beside the deliveries recorded one by one.
    agreement = scenario.agreements["HEALTH<-HRSS"]
    history = ok(api_env.call("GET", f"/audit/history?agreement={agreement}", "auditor"))["items"]
    rows = page.eval_on_selector_all("#map-table tbody tr", "r => r.map(x => x.innerText.split('\\t'))")
    counts = [sum(e["event"] == "DeliveryRecorded" for e in history)]
    counts.append(sum(e["fields"]["leafCount"] for e in history if e["event"] == "ReceiptBatchAnchored"))
    assert [r[3:5] for r in rows if r[:2] == ["HRSS", "HEALTH"]] == [[str(n) for n in counts]] and counts[
        1
    ] > 0
    page.click("#exchange-map .edge[data-edge='HRSS>HEALTH'] text")
    page.click(f"#edge-detail a[href='#/agreement/{scenario.agreements['HEALTH<-HRSS']}']")
    page.wait_for_selector("main [data-ready] #timeline")
    # The period bounds are days, both included: the day of the exchange shows it, the day before does not.
    day = history[0]["time"][:10]
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    c.open(f"map?from={day}&to={day}")
    assert "HRSS>HEALTH" in c.page.eval_on_selector_all(
        "#exchange-map .edge", "e => e.map(x => x.dataset.edge)"
    )
    c.open(f"map?from={before}&to={before}")
    assert c.page.eval_on_selector_all("#exchange-map .edge", "e => e.length") == 0
    assert c.page.query_selector("#map-empty") is not None and c.page.query_selector("#map-table") is None
    # Days the wrong way round: said so in the page, not the API's 422 about instants the user never typed.
    c.open(f"map?from={day}&to={before}")
    assert c.page.inner_text("main .error") == "The From date is after the To date."
    health = console("health")
    health.open("map")
    mine = set(health.page.eval_on_selector_all("#exchange-map .edge", "e => e.map(x => x.dataset.edge)"))
    assert "HRSS>HEALTH" in mine and "PSB>CIVIL" not in mine
    health.shot("map")


def test_a_governor_approves_an_open_proposal_and_an_auditor_only_reads_it(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    auditor = console("auditor")
    auditor.open("governance")
    assert auditor.page.query_selector(f"article[data-proposal='{scenario.open_proposal}']") is not None
    assert auditor.page.query_selector("button.approve") is None
    # The proposer's approval stands: a second would be refused (ALREADY_APPROVED), so none is offered.
    proposer = console("governor-1")
    proposer.open("governance")
    mine = f"article[data-proposal='{scenario.open_proposal}']"
    assert proposer.page.query_selector(f"{mine} .you-approved") is not None
    assert proposer.page.query_selector(f"{mine} button.approve") is None
    governor = console("governor-2")
    page = governor.open("governance")
    article = page.inner_text(f"article[data-proposal='{scenario.open_proposal}']")
    before = ok(api_env.call("GET", f"/governance/proposals/{scenario.open_proposal}", "governor-2"))
    assert "appoint auditor" in article
    assert before["parameters"]["account"] in article and before["data"] in article
    # The proposer named by the role the ledger knows it in, shortened, whole in the title (a bare address);
    # an account that is a department's signing key is named by the department's code.
    proposer_shown = page.locator(f"article[data-proposal='{scenario.open_proposal}'] .proposer")
    assert proposer_shown.inner_text().startswith("Governor 0x") and "…" in proposer_shown.inner_text()
    assert proposer_shown.locator("code").get_attribute("title") == before["proposer"]
    named = page.evaluate(
        """async () => {
          const common = await import("/console/js/pages/common.js");
          const depts = await common.departmentsById();
          const hrss = [...depts.values()].find((d) => d.code === "HRSS");
          const label = common.accountLabel(hrss.signer.toLowerCase(), depts, "governor");
          return [label.textContent, label.title === hrss.signer.toLowerCase()];
        }"""
    )
    assert named == ["HRSS", True]
    governor.shot("governance")
    page.click(f"button.approve[data-proposal='{scenario.open_proposal}']")
    page.wait_for_selector("#approved", timeout=60_000)
    proposal = ok(api_env.call("GET", f"/governance/proposals/{scenario.open_proposal}", "auditor"))
    assert proposal["executed"] and proposal["approvals"] == 2
    assert page.query_selector(f"article[data-proposal='{scenario.open_proposal}']") is None


def _fill_chinese(page: Any, fields: dict[str, str]) -> None:
    for selector, value in fields.items():
        page.fill(selector, value)


def test_demand_lists_show_each_department_its_own_and_take_its_publications_and_answers(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    practice = scenario.practice
    listed = {d["id"]: d for d in ok(api_env.call("GET", "/demands", "auditor"))}
    assert listed[practice.overdue_demand]["overdue"] and not listed[practice.answered_demand]["overdue"]
    # The auditor reads every demand, with its overdue mark as the API says it, and is offered no form.
    auditor = console("auditor")
    page = auditor.open("demands")
    shown = page.eval_on_selector_all(
        "#demand-list article.demand", "a => a.map(x => [Number(x.dataset.demand), x.dataset.overdue])"
    )
    assert sorted(shown) == sorted([i, str(d["overdue"]).lower()] for i, d in listed.items())
    answered = page.inner_text(f"article[data-demand='{practice.answered_demand}']")
    assert "就业失业登记信息" in answered and "公民身份号码, 就业状态, 登记日期" in answered
    assert "已编目，按有条件共享申请" in answered and "existing resource" in answered
    assert page.query_selector("#demand-form, .answer-form") is None
    auditor.shot("demands")
    # CIVIL: its own demand, overdue, and SAMR's to any department, which it may answer; not HEALTH's to HRSS.
    civil = console("civil")
    page = civil.open("demands")

    def ids(where: str) -> list[int]:
        shown: list[int] = page.eval_on_selector_all(
            f"#{where} article.demand", "a => a.map(x => Number(x.dataset.demand))"
        )
        return shown

    assert ids("demands-by-us") == [practice.overdue_demand]
    assert practice.open_demand in ids("demands-to-us") and practice.answered_demand not in ids(
        "demands-to-us"
    )
    overdue = page.locator(f"article[data-demand='{practice.overdue_demand}']")
    assert overdue.get_attribute("data-overdue") == "true" and overdue.locator("[data-overdue]").count() == 1
    assert overdue.locator(".answer-form").count() == 0  # its own demand: the publisher does not answer
    assert page.locator(f"article[data-demand='{practice.open_demand}'] .answer-form").count() == 1
    # A demand to no one is answered with a resource: the form offers no decline (DECLINE_NEEDS_ADDRESSEE).
    kinds = page.locator(f".answer-form[data-demand='{practice.open_demand}'] .answer-kind option")
    assert kinds.evaluate_all("o => o.map(x => x.value)") == ["existing_resource", "new_resource"]
    # HEALTH publishes a demand to PSB in Chinese, due in ten days: what it typed is what the API keeps. A
    # due day is judged by the chain's clock, not the browser's: a browser a month behind is told the chain's
    # yesterday has passed (in the user's words: the API's refusal), one a month ahead may choose the chain's
    # next days (the page refused them by the browser's clock).
    chain_now = int(api_env.setup.client.w3.eth.get_block("latest")["timestamp"])
    chain_today = datetime.fromtimestamp(chain_now, UTC).date()
    # A tab of its own: its clock is moved.
    health = console("health", fresh=True)
    health.page.clock.set_system_time(datetime.fromtimestamp(chain_now - 30 * 86400, UTC))
    page = health.open("demands")
    page.click("#publish summary")
    _fill_chinese(page, {
        "#demand-title": "死亡人口信息", "#demand-purpose": "医保待遇停发核对",
        "#demand-legal_basis": "《社会保险法》第十六条", "#demand-description": "含死亡日期；每月更新",
        "#demand-fields": "公民身份号码\n死亡日期",
    })  # fmt: skip
    page.select_option("#demand-addressee", "PSB")
    page.fill("#demand-due", (chain_today - timedelta(days=1)).isoformat())
    page.click("#demand-publish")
    page.wait_for_selector("#demand-form .outcome .error", timeout=30_000)
    assert "The due day leaves the addressee less than a week" in page.inner_text("#demand-form .outcome")
    assert page.query_selector("#published") is None
    health.page.clock.set_system_time(datetime.fromtimestamp(chain_now + 30 * 86400, UTC))
    page.fill("#demand-due", (chain_today + timedelta(days=10)).isoformat())
    page.click("#demand-publish")
    page.wait_for_selector("#published", timeout=30_000)
    published = int(page.inner_text("#published").split("#")[1].rstrip("."))
    record = ok(api_env.call("GET", f"/demands/{published}", "auditor"))
    assert record["document"] == {
        "title": "死亡人口信息", "purpose": "医保待遇停发核对", "legal_basis": "《社会保险法》第十六条",
        "description": "含死亡日期；每月更新", "fields": ["公民身份号码", "死亡日期"],
    }  # fmt: skip
    assert record["verified"] and record["status"] == "open" and not record["overdue"]
    assert "死亡人口信息" in page.inner_text(f"#demands-by-us article[data-demand='{published}']")
    # PSB declines CIVIL's overdue demand with a note in Chinese: answered late, still marked overdue.
    psb = console("psb")
    page = psb.open("demands")
    assert page.locator(f"article[data-demand='{published}'] .answer-form").count() == 1
    form = page.locator(f".answer-form[data-demand='{practice.overdue_demand}']")
    form.locator(".answer-kind").select_option("declined")
    assert form.locator(".answer-resource").is_hidden()
    form.locator(".answer-reason").select_option("legally_restricted")
    form.locator(".answer-note").fill("涉及个人隐私，需另行申请")
    form.locator("button").click()
    page.wait_for_selector("#answered", timeout=30_000)
    record = ok(api_env.call("GET", f"/demands/{practice.overdue_demand}", "civil"))
    assert (record["status"], record["overdue"]) == ("declined", True)
    assert record["answer"]["decline_reason"] == "legally_restricted"
    assert record["answer"]["note"]["document"] == {"note": "涉及个人隐私，需另行申请"}
    article = page.locator(f"article[data-demand='{practice.overdue_demand}']")
    assert article.locator(".answer-form").count() == 0 and "涉及个人隐私，需另行申请" in article.inner_text()
    page.select_option("#lang", "zh")
    page.wait_for_function("document.querySelector('#nav a[data-page=demands]').textContent === '需求清单'")
    page.wait_for_selector("main [data-ready]")
    assert "法律法规限制共享" in page.inner_text(f"article[data-demand='{practice.overdue_demand}']")
    psb.shot("demands-zh")
    page.select_option("#lang", "en")
    # A governor reads the lists and is offered neither form (the API takes both from departments only).
    governor = console("governor-1")
    page = governor.open("demands")
    assert page.query_selector(f"article[data-demand='{published}']") is not None
    assert page.query_selector("#demand-form, .answer-form") is None
    for who in ("governor-1", "auditor"):
        refused = api_env.call("POST", "/demands", who, json={"document": DEMAND_DOC, "due_by": 2**40})
        assert refused.status_code == 403, who


DEMAND_DOC = {"title": "x", "purpose": "y", "legal_basis": "z"}


def _utc(seconds: int) -> str:
    """A time as the console writes it (dom.js when())."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_inspections_show_the_auditor_everything_and_each_provider_what_it_must_present(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    practice = scenario.practice
    csv = scenario.acknowledged.delivery_id
    lapsed = ok(api_env.call("GET", f"/inspections/{practice.lapsed_inspection}", "auditor"))
    assert lapsed["sample"] and all(s["overdue"] for s in lapsed["sample"])
    # A tab of its own: its clock is moved.
    auditor = console("auditor", fresh=True)
    page = auditor.open("inspections")
    rows = page.eval_on_selector_all("#inspection-list tbody tr", "r => r.map(x => x.innerText.split('\\t'))")
    by_id = {r[0]: r for r in rows}
    assert by_id[f"#{practice.lapsed_inspection}"][-1] == str(len(lapsed["sample"]))
    assert by_id[f"#{practice.inspection}"][-1] == "0"
    # Its period in UTC days, the last one included, as the form offers periods (it read two midnights).
    inspected = ok(api_env.call("GET", f"/inspections/{practice.inspection}", "auditor"))
    first, last = (
        datetime.fromtimestamp(s, UTC).date() for s in (inspected["period_from"], inspected["period_to"] - 1)
    )
    days = str(first) if first == last else f"{first} \u2013 {last}"
    assert by_id[f"#{practice.inspection}"][2] == days
    auditor.shot("inspections")
    # The presented CSV delivery: its outcome recorded from its MATCH, in one click.
    page = auditor.open(f"inspection/{practice.inspection}")
    assert page.query_selector("#inspection-overdue") is None
    page.click(f"button.record-outcome[data-delivery='{csv}']")
    page.wait_for_selector("#recorded", timeout=30_000)
    inspected = ok(api_env.call("GET", f"/inspections/{practice.inspection}", "auditor"))
    assert page.inner_text("#inspection-period") == days
    sample = {s["delivery_id"]: s for s in inspected["sample"]}
    assert (sample[csv]["presented"], sample[csv]["outcome"]) == ("MATCH", "passed")
    # Who opened it and what was presented, in words (they read a bare address and "MATCH"): the auditor's
    # account shortened, whole in its title; the verdict's code in the title of its words.
    opened = page.locator("#opened-by")
    assert opened.inner_text().startswith("Auditor 0x") and "…" in opened.inner_text()
    assert opened.locator("code").get_attribute("title") == inspected["auditor"]
    presented = page.locator(f"#sample tr:has(code[title='{csv}']) [data-presented]")
    assert (presented.inner_text(), presented.get_attribute("title")) == ("matches the chain", "MATCH")
    # Not presented yet, before the deadline: nothing the API would take is offered.
    assert page.eval_on_selector_all("button.record-outcome", "b => b.length") == 0
    auditor.shot("inspection")
    # The lapsed inspection: every sampled delivery overdue; one recorded as not presented.
    page = auditor.open(f"inspection/{practice.lapsed_inspection}")
    assert f"{len(lapsed['sample'])} sampled deliveries are past their deadline" in page.inner_text(
        "#inspection-overdue"
    )
    first = lapsed["sample"][0]["delivery_id"]
    page.click(f"button.record-outcome[data-delivery='{first}']")
    page.wait_for_selector("#recorded", timeout=30_000)
    after = {
        s["delivery_id"]: s
        for s in ok(api_env.call("GET", f"/inspections/{practice.lapsed_inspection}", "auditor"))["sample"]
    }
    assert (after[first]["outcome"], after[first]["overdue"]) == ("not_presented", False)
    assert page.locator("[data-overdue]").count() == len(lapsed["sample"]) - 1
    # A pass sent straight to the contract with the auditor's key, for a delivery nobody presented: on chain,
    # and marked as not the outcome the service's check calls for.
    assert len(lapsed["sample"]) >= 3  # one left overdue for the scorecard below
    second = lapsed["sample"][1]["delivery_id"]
    deployed = load_deployment(api_env.settings.home).sharing_practice
    assert deployed is not None
    contract = LedgerClient(api_env.setup.client.endpoint, load_artifact("SharingPractice").abi).at(
        deployed.address
    )
    key = api_env.keystore.unlock("auditor")
    args = (practice.lapsed_inspection, bytes.fromhex(second[2:]), 1, bytes(32))  # 1: passed
    contract.wait(contract.submit(key, contract.build(str(key.address), "recordOutcome", *args)))
    assert (
        ok(api_env.call("GET", f"/inspections/{practice.lapsed_inspection}", "auditor"))["sample"][1][
            "outcome_as_checked"
        ]
        is False
    )
    auditor.open("inspections")
    page = auditor.open(f"inspection/{practice.lapsed_inspection}")
    page.wait_for_selector("[data-not-as-checked]", timeout=30_000)
    marked = page.locator("[data-not-as-checked]")
    assert marked.count() == 1 and "around the service's check" in str(marked.get_attribute("title"))
    # HRSS: of each inspection, the deliveries it provided; those without an outcome are what it must present.
    hrss = console("hrss")
    page = hrss.open("inspections")
    mine = [
        (i["id"], s["delivery_id"])
        for i in ok(api_env.call("GET", "/inspections", "hrss"))
        for s in i["sample"]
        if s["outcome"] is None
    ]
    shown = page.eval_on_selector_all(
        "#to-present tbody tr", "r => r.map(x => [x.cells[0].innerText, x.querySelector('code').title])"
    )
    assert shown == [[f"#{i}", d] for i, d in mine] and mine
    assert page.query_selector("#open-inspection") is None
    hrss.shot("inspections")
    page = hrss.open(f"inspection/{practice.inspection}")
    read = ok(api_env.call("GET", f"/inspections/{practice.inspection}", "hrss"))
    assert page.eval_on_selector_all("#sample code.hex", "c => c.map(x => x.title)") == [
        s["delivery_id"] for s in read["sample"]
    ]
    assert f"dxl inspection present {practice.inspection}" in page.inner_text("#present-how")
    assert page.query_selector("button.record-outcome") is None
    hrss.shot("inspection")
    # Its scorecard counts them too, each inspection with an overdue delivery linked.
    page = hrss.open("scorecards?department=HRSS")
    card = ok(api_env.call("GET", "/audit/scorecard?department=HRSS", "hrss"))["practice"]["inspections"]
    linked = page.eval_on_selector_all(
        "#score-overdue a.overdue-inspection", "a => a.map(x => x.textContent)"
    )
    assert linked == [f"#{i}" for i in sorted({d["inspection_id"] for d in card["overdue_deliveries"]})]
    assert f"#{practice.lapsed_inspection}" in linked
    # SAMR provided nothing in the period: nothing of the sample is shown, nothing to present.
    samr = console("samr")
    page = samr.open(f"inspection/{practice.inspection}")
    assert ok(api_env.call("GET", f"/inspections/{practice.inspection}", "samr"))["sample"] == []
    assert page.query_selector("#sample-none") is not None and page.query_selector("#sample") is None
    samr.open("inspections")
    assert samr.page.query_selector("#to-present-none") is not None
    # The auditor opens an inspection of whole evaluation periods, the only bounds the ledger takes: the form
    # offers the closed periods by the chain's clock, newest first, not the browser's (a month ahead here),
    # as UTC days (it took free From/To days, nearly every choice refused on the default 30-day grid).
    chain_now = int(api_env.setup.client.w3.eth.get_block("latest")["timestamp"])
    grid = ok(api_env.call("GET", "/evaluation-period", "auditor"))
    assert grid["length_seconds"] == EVALUATION_PERIOD
    auditor.page.clock.set_system_time(datetime.fromtimestamp(chain_now + 30 * 86400, UTC))
    page = auditor.open("inspections")
    page.click("#open-inspection summary")
    offered = page.eval_on_selector_all(
        "#insp-period option", "o => o.map(x => [Number(x.value), x.textContent])"
    )

    def day(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).date().isoformat()

    assert [end for end, _ in offered] == [grid["starts_at"] - k * EVALUATION_PERIOD for k in range(24)]
    assert offered[0] == [grid["starts_at"], day(grid["starts_at"] - 86400)]  # the last closed day
    page.fill("#insp-periods", "3")
    newest = grid["starts_at"]
    assert page.inner_text("#insp-covers") == f"Covers {day(newest - 3 * 86400)} \u2013 {day(newest - 86400)}"
    # The oldest period offered, alone: the scenario delivered nothing in it.
    oldest = offered[-1][0]
    page.select_option("#insp-period", str(oldest))
    page.fill("#insp-periods", "1")
    assert page.inner_text("#insp-covers") == f"Covers {day(oldest - 86400)}"
    # Three days to present, the notice the ledger gives from the draw (which comes after the opening): no
    # delivery of it could ever be found not presented, and the page says so rather than open it.
    opened = len(ok(api_env.call("GET", "/inspections", "auditor")))
    page.fill("#insp-within", "3")
    page.click("#insp-open")
    assert "give them at least 4 days" in page.locator("#insp-form .outcome .error").inner_text()
    assert len(ok(api_env.call("GET", "/inspections", "auditor"))) == opened
    page.fill("#insp-within", "7")
    page.click("#insp-open")
    page.wait_for_selector("#inspection-title [data-status=open]", timeout=30_000)
    newest_inspection = max(ok(api_env.call("GET", "/inspections", "auditor")), key=lambda i: i["id"])
    assert (newest_inspection["period_from"], newest_inspection["period_to"]) == (
        oldest - EVALUATION_PERIOD,
        oldest,
    )
    mine_blocks(api_env, 2)
    page.click("#draw")
    page.wait_for_selector("#inspection-title [data-status=drawn]", timeout=30_000)
    assert page.query_selector("#sample-none") is not None
    # In Chinese the form reads the same periods.
    page = auditor.open("inspections")
    page.select_option("#lang", "zh")
    page.wait_for_selector("#open-inspection")
    page.click("#open-inspection summary")
    assert page.inner_text("#insp-covers") == f"覆盖 {day(newest - 86400)}"
    page.select_option("#lang", "en")


def test_a_suspended_department_is_offered_none_of_the_writes_the_ledger_refuses_it(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    health = next(d for d in ok(api_env.call("GET", "/departments", "auditor")) if d["code"] == "HEALTH")
    agreement = scenario.agreements["HEALTH<-HRSS"]
    scoring = "#evaluation-form, #scored-this-period, #no-evidence"  # what a party that may score is shown
    assert ok(govern(api_env, {"action": "suspend_department", "department_id": health["id"]}))["record"][
        "executed"
    ]
    try:
        # The ledger refuses a suspended department's demands, answers and scores (DEPARTMENT_NOT_ACTIVE); the
        # page offered the forms all the same, each click refused.
        demand = {
            "document": {"title": "t", "purpose": "p", "legal_basis": "l"},
            "due_by": period(api_env)[1],
        }
        refused = api_env.call("POST", "/demands", "health", json=demand)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "DEPARTMENT_NOT_ACTIVE"
        # Signed in now: a department's standing is read at sign-in.
        c = console("health", fresh=True)
        assert c.page.inner_text("#suspended") == "suspended"
        page = c.open("demands")
        assert page.query_selector("#demands-to-us") is not None  # it still reads its demands
        assert page.query_selector("#demand-form, .answer-form") is None
        page = c.open(f"agreement/{agreement}")
        assert page.query_selector("#evaluations") is not None and page.query_selector(scoring) is None
    finally:
        reinstate = {"action": "reinstate_department", "department_id": health["id"]}
        assert ok(govern(api_env, reinstate))["record"]["executed"]
    # Reinstated, it is offered them again at its next sign-in.
    c = console("health", fresh=True)
    assert c.page.query_selector("#suspended") is None
    assert c.open("demands").query_selector("#demand-form") is not None
    assert c.open(f"agreement/{agreement}").query_selector(scoring) is not None


def test_evaluations_on_the_agreement_page_each_party_scores_the_other_once_a_period(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    agreement = scenario.agreements["HEALTH<-HRSS"]
    health = console("health")
    page = health.open(f"agreement/{agreement}")
    received = page.inner_text("#evaluation-list")
    assert "received" in received and "按约定用途使用" in received and "Purpose compliance 5" in received
    # The form labels its scores as its other fields, in Chinese too (they read "timeliness", the API's key).
    labels = "l => l.map(x => x.firstChild.textContent)"
    shown = page.eval_on_selector_all("#evaluation-form label", labels)
    assert shown == ["Timeliness", "Completeness", "Accuracy", "Delivery scored", "Comment"], shown
    page.select_option("#lang", "zh")
    page.wait_for_selector("#evaluation-form label:has-text('及时性')")
    page.select_option("#lang", "en")
    page.wait_for_selector("main [data-ready] #score-timeliness")
    page.select_option("#score-timeliness", "4")
    page.fill("#score-comment", "字段齐全，次日送达")
    page.click("#score-submit")
    page.wait_for_selector("#scored", timeout=30_000)
    scores = ok(api_env.call("GET", f"/agreements/{agreement}/evaluations", "auditor"))
    mine = next(e for e in scores if e["scored_side"] == "provider")
    assert mine["scores"] == {"timeliness": 4, "completeness": 5, "accuracy": 5}
    assert mine["comment"]["document"] == {"comment": "字段齐全，次日送达"}
    directions = page.eval_on_selector_all(
        "#evaluation-list [data-direction]", "d => d.map(x => x.dataset.direction)"
    )
    assert sorted(directions) == ["given", "received"]
    assert (
        page.query_selector("#evaluation-form") is None
        and page.query_selector("#scored-this-period") is not None
    )
    health.shot("evaluations")
    # The request's answer deadline beside it, marked overdue only if the API says it was decided late.
    request_id = ok(api_env.call("GET", f"/agreements/{agreement}", "health"))["request_id"]
    request = ok(api_env.call("GET", f"/requests/{request_id}", "health"))
    shown = page.inner_text("#request-deadline")
    assert _utc(request["answer_by"]) in shown and _utc(request["decided_at"]) in shown
    overdue = page.query_selector("#request-deadline [data-overdue]") is not None
    assert overdue is bool(request["overdue"])
    # The provider scored HEALTH this period already; the auditor reads both and scores nothing.
    for who in ("hrss", "auditor"):
        c = console(who)
        page = c.open(f"agreement/{agreement}")
        assert page.eval_on_selector_all("#evaluation-list tbody tr", "r => r.length") == len(scores) == 2
        assert page.query_selector("#evaluation-form") is None
        assert (page.query_selector("#scored-this-period") is not None) == (who == "hrss")
    # The browser's clock a period ahead of the chain's: "scored this period" is the chain's period, as the
    # API says it (GET /evaluation-period), not the browser's, which offered the form again.
    period = ok(api_env.call("GET", "/evaluation-period", "hrss"))
    c = console("hrss")
    ahead = period["chain_time"] + period["length_seconds"] + 86400
    c.page.clock.set_system_time(datetime.fromtimestamp(ahead, UTC))
    page = c.open(f"agreement/{agreement}")
    assert page.query_selector("#evaluation-form") is None
    assert page.query_selector("#scored-this-period") is not None
    # A second score in the period is refused by the API: the form was the only way the page offered.
    low = {
        "delivery_id": scenario.evidence.delivery_id,
        "timeliness": 1,
        "completeness": 1,
        "accuracy": 1,
    }
    again = api_env.call("POST", f"/agreements/{agreement}/evaluations", "health", json=low)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ALREADY_SCORED")


# Markup, a script, an attribute break-out, a javascript: URL, a right-to-left override and a word too long
# for any line: what a department could put in every text the console shows.
HOSTILE = (
    '<img src=x onerror="window.__xss=1">"><svg onload="window.__xss=2">\'><script>window.__xss=3</script>'
    "javascript:window.__xss=4 \u202eevil\u202c "
)
#: HOSTILE as the API takes what both parties sign or read before they answer (a request's purpose and terms,
#: a demand, an answer's note, a score's comment): in reading order, its override left out (InOrderText).
HOSTILE_IN_ORDER = HOSTILE.replace("\u202e", "").replace("\u202c", "")
LONG_WORD = "W" * 300


def test_a_demand_is_answered_only_with_a_resource_the_ledger_takes_for_the_answer(
    console: Any, api_env: ApiEnv
) -> None:
    # The ledger takes a department's own shared resource, catalogued by the demand's publication for an
    # existing resource and after it for a new one (RESOURCE_UNFIT otherwise); the form offered every resource
    # the department owned for either answer, a not-shared one as well.
    before = [r["id"] for r in ok(api_env.call("GET", "/resources?owner=HRSS", "auditor"))]
    document = {"title": "企业登记信息", "purpose": "核对参保单位", "legal_basis": "《社会保险法》第五十七条"}
    body = {"document": document, "addressee": "HRSS", "due_by": period(api_env)[1]}
    demand = ok(api_env.call("POST", "/demands", "samr", json=body), 201)["record"]
    fresh, unshared = register(api_env, "hrss", "conditional"), register(api_env, "hrss", "not_shared")
    ok(api_env.call("POST", "/audit/index", "auditor"))
    assert demand["catalog_size"] < min(fresh, unshared)
    shared_before = [
        r["id"] for r in ok(api_env.call("GET", "/resources?owner=HRSS", "auditor")) if r["id"] in before
        and r["share_type"] != "not_shared"
    ]  # fmt: skip
    page = console("hrss").open("demands")
    form = page.locator(f".answer-form[data-demand='{demand['id']}']")

    def offered(kind: str) -> list[int]:
        form.locator(".answer-kind").select_option(kind)
        values: list[str] = form.locator(".answer-resource option").evaluate_all("o => o.map(x => x.value)")
        return sorted(int(v) for v in values)

    assert offered("existing_resource") == sorted(shared_before) and offered("new_resource") == [fresh]
    form.locator("button").click()
    page.wait_for_selector("#answered", timeout=30_000)
    answer = ok(api_env.call("GET", f"/demands/{demand['id']}", "samr"))["answer"]
    assert answer["answer"] == "new_resource" and answer["resource_id"] == fresh


def test_a_publisher_rejects_an_answer_that_does_not_meet_its_demand_and_withdraws_another(
    console: Any, api_env: ApiEnv
) -> None:
    """The publisher's say in its demand, on the page as over the API: a resource answer is rejected with a
    reason and a note (the demand waits for another, its rejection listed), and a demand still unanswered is
    withdrawn (it reads withdrawn, no one is offered to answer it). Another department is offered neither."""
    document = {
        "title": "婚姻登记信息",
        "purpose": "住房保障资格审核",
        "legal_basis": "《婚姻登记条例》第二条",
    }
    body = {"document": document, "addressee": "HRSS", "due_by": period(api_env)[1]}
    answered, waiting = (ok(api_env.call("POST", "/demands", "samr", json=body), 201)["record"] for _ in "ab")
    resource = register(api_env, "hrss", "conditional")
    ok(api_env.call("POST", f"/demands/{answered['id']}/answer", "hrss",
                    json={"answer": "new_resource", "resource_id": resource}))  # fmt: skip
    ok(api_env.call("POST", "/audit/index", "auditor"))
    hrss = console("hrss").open("demands")
    assert hrss.locator(".publisher-form").count() == 0
    page = console("samr").open("demands")
    form = page.locator(f".reject-form[data-demand='{answered['id']}']")
    form.locator(".reject-reason").select_option("incomplete")
    form.locator(".reject-note").fill("缺少登记日期字段")
    form.locator("button").click()
    page.wait_for_selector("#rejected", timeout=30_000)
    record = ok(api_env.call("GET", f"/demands/{answered['id']}", "samr"))
    assert (record["status"], record["rejections"][0]["reason"]) == ("open", "incomplete")
    assert record["rejections"][0]["note"]["document"] == {"note": "缺少登记日期字段"}
    shown = page.inner_text(f"article[data-demand='{answered['id']}'] .rejection")
    assert f"resource #{resource} of HRSS" in shown and "incomplete" in shown and "缺少登记日期字段" in shown
    page.locator(f".publisher-form[data-demand='{waiting['id']}'] button.withdraw").click()
    page.wait_for_selector("#withdrawn", timeout=30_000)
    assert ok(api_env.call("GET", f"/demands/{waiting['id']}", "samr"))["status"] == "withdrawn"
    article = page.locator(f"article[data-demand='{waiting['id']}']")
    assert (
        article.get_attribute("data-status") == "withdrawn"
        and article.locator(".publisher-form").count() == 0
    )
    hrss = console("hrss").open("demands")
    assert hrss.locator(f".answer-form[data-demand='{waiting['id']}']").count() == 0
    assert hrss.locator(f".answer-form[data-demand='{answered['id']}']").count() == 1


#: The longest department code the ledger takes (verifier.departments), wider than a node of the map.
LONG_CODE = "ODD_" + "W" * 28


@pytest.fixture(scope="module")
def hostile(api_env: ApiEnv, scenario: Scenario) -> dict[str, int]:
    """SAMR's resource, CIVIL's agreement over it and 510 deliveries (past a page of the API's lists), a
    department admitted and proposed for suspension, each text of them HOSTILE (and LONG_WORD where it fits).
    Used by the last tests of the module: the other tests count the scenario's exchanges."""
    text, in_order = HOSTILE + LONG_WORD, HOSTILE_IN_ORDER + LONG_WORD
    document = catalog_document(text, **{
        "dct:description": text, "dcat:keyword": [text, "javascript:window.__xss=5"],
        "csvw:column": [{"csvw:name": text[:200], "csvw:datatype": text[:100], "dct:description": text}],
        "dct:accessRights": text, "dcatap:applicableLegislation": text, "dct:accrualPeriodicity": text,
        "dct:conformsTo": "javascript:window.__xss=6",
        "dcat:contactPoint": {"vcard:fn": HOSTILE, "vcard:hasEmail": "javascript:window.__xss=7@example"},
    })  # fmt: skip
    # Registered by its hash and its document written into the service's database: the API refuses a title
    # that is not one line of visible text (the override), by POST /resources and by import alike, but the
    # console shows what the chain's hash holds, which any client may have written and a database may hold
    # (one shared with another service, or edited by an operator).
    body = {
        "metadata_hash": "0x" + document_hash(document).hex(),
        "schema_hash": "0x" + "11" * 32,
        "share_type": "conditional",
        "sensitivity": 2,
    }
    resource = ok(api_env.call("POST", "/resources", "samr", json=body), 201)["record"]["id"]
    sql(
        api_env,
        "INSERT INTO api_catalog_documents (metadata_hash, document, search_text, created_at)"
        " VALUES (:h, :d, :s, CURRENT_TIMESTAMP)",
        h=body["metadata_hash"], d=canonical_document(document).decode("utf-8"), s=search_text(document),
    )  # fmt: skip
    assert ok(api_env.call("GET", f"/resources/{resource}", "samr"))["verified"] is True
    terms = {
        "csvw:column": [{"csvw:name": text[:200]}], "dcatap:applicableLegislation": in_order,
        "dcat:mediaType": "text/csv", "dct:accrualPeriodicity": "P1D", "odrl:delayPeriod": "PT4H",
        "odrl:permission": ["use"],
        "odrl:prohibition": ["distribute"], "dxl:retentionDays": 30,
        "odrl:duty": {"odrl:assigner": in_order, "odrl:assignee": in_order},
    }  # fmt: skip
    valid_from, valid_until = period(api_env)
    request = ok(api_env.call("POST", "/requests", "civil", json={
        "resource_id": resource, "purpose": in_order, "terms": terms,
        "valid_from": valid_from, "valid_until": valid_until,
    }), 201)["record"]["id"]  # fmt: skip
    ok(api_env.call("POST", f"/requests/{request}/approve", "samr"))
    ok(api_env.call("POST", f"/requests/{request}/signatures", "civil", json={}))
    agreement = ok(api_env.call("POST", f"/requests/{request}/signatures", "samr", json={}))["agreement"]
    grant = ok(api_env.call("POST", "/grants", "samr", json={
        "agreement_id": agreement["id"], "expires_at": agreement["valid_until"]}), 201)["record"]  # fmt: skip
    for n in (200, 200, 110):
        deliveries = [
            {"delivery_id": delivery_id_for(grant["provider"]), "grant_id": grant["id"], "commitment": b32(),
             "byte_size": 100, "record_count": 1}
            for _ in range(n)
        ]  # fmt: skip
        ok(api_env.call("POST", "/deliveries/batch", "samr", json={"deliveries": deliveries}), 201)
    # Admitted through the ledger itself: the API refuses a name that is not one line of visible text, but the
    # console shows what the chain holds, which any governor's own client may have written.
    client = api_env.setup.client
    proposer, approver = (api_env.keystore.unlock(g) for g in ("governor-1", "governor-2"))
    name = HOSTILE + "\u202e" + "N" * 40
    data = admission_data(LONG_CODE, name, "0x" + secrets.token_hex(20), secrets.token_bytes(32))
    action = int(GovernanceAction.ADMIT_DEPARTMENT)
    (created,) = client.wait_all(
        [client.submit(proposer, client.build(proposer.address, "propose", action, data))]
    )
    pid = created.event("ProposalCreated").args["proposalId"]
    client.wait_all([client.submit(approver, client.build(approver.address, "approve", pid))])
    odd = next(d["id"] for d in ok(api_env.call("GET", "/departments", "auditor")) if d["code"] == LONG_CODE)
    suspend = {"action": "suspend_department", "department_id": odd}
    proposal = ok(api_env.call("POST", "/governance/proposals", "governor-1", json=suspend), 201)["record"][
        "id"
    ]
    # A demand and its answer, each text of them hostile, and a score with a hostile comment.
    demand = {
        "title": in_order,
        "purpose": in_order,
        "legal_basis": in_order,
        "description": in_order,
        "fields": [in_order[:200]],
    }
    due = {"document": demand, "addressee": "CIVIL", "due_by": agreement["valid_until"]}
    demand_id = ok(api_env.call("POST", "/demands", "samr", json=due), 201)["record"]["id"]
    answer = {"answer": "declined", "decline_reason": "not_held", "note": in_order}
    ok(api_env.call("POST", f"/demands/{demand_id}/answer", "civil", json=answer))
    score = {"delivery_id": deliveries[0]["delivery_id"], "purpose_compliance": 3, "comment": in_order}
    ok(api_env.call("POST", f"/agreements/{agreement['id']}/evaluations", "samr", json=score), 201)
    ok(api_env.call("POST", "/audit/index", "auditor"))
    return {"resource": resource, "agreement": agreement["id"], "proposal": proposal}


def test_department_text_is_shown_as_text_in_pages_that_keep_their_width(
    console: Any, api_env: ApiEnv, hostile: dict[str, int]
) -> None:
    # A tab of its own: a dialog handler on its page.
    c = console("auditor", fresh=True)
    dialogs: list[str] = []

    def dismissed(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    c.page.on("dialog", dismissed)
    c.page.evaluate(
        "document.addEventListener('securitypolicyviolation',"
        " e => (window.__csp ||= []).push(e.violatedDirective))"
    )
    for hash_ in (
        "catalog", f"resource/{hostile['resource']}", f"agreement/{hostile['agreement']}", "governance",
        "scorecards", "map", "demands",
    ):  # fmt: skip
        page = c.open(hash_)
        # Shown, as the department wrote it: text, never markup (nothing ran, nothing was even refused). The
        # map names departments by code, their names in its nodes' tooltips.
        shown = (
            page.inner_text("main")
            if hash_ != "map"
            else page.text_content(f"#exchange-map [data-node={LONG_CODE}] title") or ""
        )
        # A demand's every text is in reading order; each other page shows one with the override.
        assert (HOSTILE_IN_ORDER if hash_ == "demands" else HOSTILE).strip() in shown.replace("\n", ""), hash_
        assert page.evaluate("[window.__xss, window.__csp]") == [None, None], hash_
        if hash_ == "map":
            # Every code legible: white within its node's circle, or in ink under it, inside the map (white
            # letters past the circle's edge were white on white, and the long code ran over its neighbours).
            labels = page.eval_on_selector_all(
                "#exchange-map .node",
                """nodes => nodes.map(g => {
                  const c = g.querySelector('circle'), b = g.querySelector('text').getBBox();
                  const [x, y, r] = ['cx', 'cy', 'r'].map(a => Number(c.getAttribute(a)));
                  const inside = b.x >= x - r && b.x + b.width <= x + r;
                  const under = b.y >= y + r && b.x >= 0 && b.x + b.width <= 520;
                  return [g.dataset.node, inside && !g.querySelector('text.outside') || under];
                })""",
            )
            assert len(labels) == 6 and all(fits for _, fits in labels), labels
            # Counts and volumes grouped as the language writes them: 510 deliveries of 100 bytes read
            # "51000", one long number.
            rows = page.eval_on_selector_all(
                "#map-table tbody tr", "r => r.map(x => x.innerText.split('\\t'))"
            )
            (samr,) = [r for r in rows if r[:2] == ["SAMR", "CIVIL"]]
            volume = int(samr[-1].replace(",", ""))
            assert volume >= 51_000 and samr[-1] == f"{volume:,}", samr
            assert f"{volume:,} bytes" in (
                page.text_content("#exchange-map [data-edge='SAMR>CIVIL'] title") or ""
            )
        assert (
            page.eval_on_selector_all("main img, main script, main [onerror], main [onload]", "x => x.length")
            == 0
        )
        hrefs = page.eval_on_selector_all("a[href]", "a => a.map(x => x.getAttribute('href'))")
        assert all(href.startswith("#") for href in hrefs), hash_
        # A 300-letter word, a department's long name in a list: broken or cut, the page as wide as the tab.
        wide = page.evaluate(
            "[...document.querySelectorAll('main *')]"
            ".filter(e => e.getBoundingClientRect().right > innerWidth)"
            ".slice(0, 3).map(e => `${e.tagName}#${e.id}`)"
        )
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), (hash_, wide)
        c.shot(f"hostile-{hash_.split('/')[0]}")
    assert dialogs == []
    # The department's name before its status: its override character, never closed, reorders the name only,
    # and "(active)" still reads left to right.
    c.open("governance")
    rects = c.page.evaluate(
        """id => {
          const dd = [...document.querySelectorAll(`article[data-proposal='${id}'] dd`)]
            .find(x => x.textContent.endsWith("(active)"));
          const status = dd.lastChild, n = status.textContent.length, range = document.createRange();
          const left = (i) => {
            range.setStart(status, i);
            range.setEnd(status, i + 1);
            return range.getBoundingClientRect().left;
          };
          return [left(n - 8), left(n - 1)];
        }""",
        hostile["proposal"],
    )
    assert rects[0] < rects[1], rects
    # In Chinese the status is Chinese too (it read "(active)").
    c.page.select_option("#lang", "zh")
    c.page.wait_for_selector(f"article[data-proposal='{hostile['proposal']}'] dd:has-text('(生效)')")
    shown = c.page.inner_text(f"article[data-proposal='{hostile['proposal']}'] dd:has-text('{LONG_CODE}')")
    assert shown.endswith("(生效)") and "(active)" not in shown, shown
    c.page.select_option("#lang", "en")
    # A resource's 510 deliveries, 50 at a time.
    page = c.open(f"resource/{hostile['resource']}")
    first = page.eval_on_selector_all("#resource-deliveries code.hex", "c => c.map(x => x.title)")
    pager = page.locator("#resource-deliveries + .pager")
    assert len(first) == 50 and pager.locator("[role=status]").inner_text() == "rows 1\u201350 of 510"
    assert pager.locator("[data-page-turn=previous]").is_disabled()
    pager.locator("[data-page-turn=next]").click()
    second = page.eval_on_selector_all("#resource-deliveries code.hex", "c => c.map(x => x.title)")
    assert pager.locator("[role=status]").inner_text() == "rows 51\u2013100 of 510"
    assert len(second) == 50 and not set(first) & set(second)
    # And its agreement's timeline, 50 steps at a time, oldest first: the request, the decision, both
    # signatures and the grant, then the deliveries.
    page = c.open(f"agreement/{hostile['agreement']}")
    pager = page.locator("#timeline + .pager")
    steps = page.eval_on_selector_all("#timeline .step", "s => s.map(x => x.dataset.event)")
    assert steps[:4] == ["AccessRequested", "RequestApproved", "AgreementConcluded", "GrantIssued"]
    assert len(steps) == 50 and pager.locator("[role=status]").inner_text() == "steps 1\u201350 of 514"
    pager.locator("[data-page-turn=next]").click()
    assert pager.locator("[role=status]").inner_text() == "steps 51\u2013100 of 514"
    assert set(page.eval_on_selector_all("#timeline .step", "s => s.map(x => x.dataset.event)")) == {
        "DeliveryRecorded"
    }
    # A search that finds nothing says so, and what to do.
    page = c.open("catalog?q=no-such-resource-anywhere")
    assert "change or clear them" in page.inner_text("#catalog-empty")
    assert page.query_selector("#catalog-table") is None


def test_every_page_keeps_to_a_phones_width_and_a_timelines_steps_to_one_edge(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    """At a phone's 390 pixels no page is wider than the window (the catalog's owner select, the charts, the
    tables and the verify page's delivery id field made the whole page scroll sideways, the header ending
    mid-page); a table wider than that scrolls by itself. At 1280 every step of a timeline starts its title
    at one edge (an acknowledgement's longer phase name pushed its title right of the others')."""
    c = console("auditor")
    page = c.page
    agreement = scenario.agreements["HEALTH<-HRSS"]
    resource = ok(api_env.call("GET", f"/agreements/{agreement}", "auditor"))["resource_id"]
    inspection = min(i["id"] for i in ok(api_env.call("GET", "/inspections", "auditor")))
    timeline = f"agreement/{agreement}"
    page.set_viewport_size({"width": 390, "height": 480})
    for hash_ in (
        "map", "catalog", f"resource/{resource}", timeline, "verify", "scorecards?department=HRSS", "demands",
        "inspections", f"inspection/{inspection}", "governance",
    ):  # fmt: skip
        c.open(hash_)
        wide = page.evaluate(
            "[...document.querySelectorAll('main *')].filter(e => !e.closest('table')"
            " && e.getBoundingClientRect().right > innerWidth).slice(0, 3).map(e => `${e.tagName}#${e.id}`)"
        )
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), (hash_, wide)
        c.shot(f"phone-{hash_.split('/')[0].split('?')[0]}")
    page.set_viewport_size({"width": 1280, "height": 480})
    # A resource's facts, the entry's and its catalog document's, have their values at one edge (the
    # document's were a list of their own, their values at another edge).
    c.open(f"resource/{resource}")
    values = page.eval_on_selector_all("main dl.facts dd", "d => d.map(x => x.getBoundingClientRect().left)")
    assert len(values) > 6 and len(set(values)) == 1, values
    c.open(timeline)
    edges = page.eval_on_selector_all(
        "#timeline .step",
        "s => s.map(x => [x.querySelector('.step-head strong'), x.querySelector('.step-body')]"
        ".map(e => Math.round(e.getBoundingClientRect().left)))",
    )
    assert len(edges) >= 8 and len({left for step in edges for left in step}) == 1, edges
    # The evaluation table's column names are capitalised alike.
    assert page.eval_on_selector_all("#evaluation-list th", "t => t.map(x => x.innerText)")[-1] == "Block"


def test_the_console_refuses_to_parse_a_string_as_markup(console: Any) -> None:
    # The pages build text nodes only; the policy (Trusted Types, no policy allowed) holds them to it.
    page = console(None).page
    writes = page.evaluate(
        """() => {
          const writes = {
            innerHTML: () => { document.querySelector("main").innerHTML = "<b>x</b>"; },
            insertAdjacentHTML: () => document.body.insertAdjacentHTML("beforeend", "<b>x</b>"),
            scriptText: () => { document.createElement("script").textContent = "window.__xss = 1"; },
          };
          const out = {};
          for (const [name, write] of Object.entries(writes)) {
            try { write(); out[name] = "written"; } catch (e) { out[name] = e.name; }
          }
          return out;
        }"""
    )
    assert writes == dict.fromkeys(("innerHTML", "insertAdjacentHTML", "scriptText"), "TypeError")


def test_signing_out_forgets_the_token_and_what_it_read(
    console: Any, api_env: ApiEnv, scenario: Scenario
) -> None:
    token = api_env.tokens["demo-health"]
    agreement = scenario.agreements["HEALTH<-HRSS"]
    # A tab of its own: it signs out, and what it read must be in no cache.
    c = console("health", fresh=True)
    c.open(f"agreement/{agreement}")
    duty = "仅用于医保结算资格核验，到期删除"  # from the terms HEALTH signed
    assert duty in c.page.inner_text("#terms")
    c.page.click("#signout")
    c.page.wait_for_selector("#signin")
    stored = c.page.evaluate("[sessionStorage.length, Object.keys(localStorage), document.cookie]")
    assert stored == [0, ["dxl.lang"], ""]
    assert duty not in c.page.content() and c.nav() == set()
    # Back to the agreement's address: the sign-in form, not the agreement.
    c.page.go_back()
    c.page.wait_for_function(f"location.hash === '#/agreement/{agreement}'")
    c.page.wait_for_selector("#signin")
    assert duty not in c.page.content()
    # Nor any copy in the browser's cache of what the token read (only-if-cached: stale copies included).
    cached = c.page.evaluate(
        """paths => Promise.all(paths.map(p => fetch(p, {cache: "only-if-cached", mode: "same-origin"})
            .then(r => `${p} ${r.status}`, () => null)))""",
        [f"/agreements/{agreement}", "/me", "/departments"],
    )
    assert cached == [None, None, None]
    # And the token went in a header only: in no address the page asked for.
    assert not [u for u in c.requests if token in u]


def test_a_proposal_executed_under_an_open_page_is_shown_as_it_stands(console: Any, api_env: ApiEnv) -> None:
    appoint = {"action": "grant_auditor", "account": "0x" + secrets.token_hex(20)}
    proposal = ok(api_env.call("POST", "/governance/proposals", "governor-1", json=appoint), 201)["record"][
        "id"
    ]
    ok(api_env.call("POST", "/audit/index", "auditor"))
    governor = console("governor-2")
    page = governor.open("governance")
    # Executed from elsewhere (another tab, the command line) while the page shows it open.
    assert ok(api_env.call("POST", f"/governance/proposals/{proposal}/approve", "governor-2"))["record"][
        "executed"
    ]
    page.click(f"button.approve[data-proposal='{proposal}']")
    now = page.locator(f"article[data-proposal='{proposal}'][data-status=executed]")
    now.wait_for(timeout=10_000)
    assert "PROPOSAL_EXECUTED" in now.inner_text() and "as it stands now" in now.inner_text()
    assert "2 of 2 approvals" in now.inner_text() and now.locator("button.approve").count() == 0


def test_a_mistyped_address_is_named_as_such(console: Any) -> None:
    c = console("hrss")
    # Not another page shown as if it were the one asked for.
    c.open("scorecard")
    assert c.page.inner_text("#unknown-page").startswith("The console has no page “scorecard”")
    assert c.page.query_selector("main [data-page=map]") is None and "scorecards" in c.nav()
    # An address that names no record: said in the address's terms, not as the API's parameter.
    for hash_, written in (("resource/abc", "abc"), ("agreement/", ""), ("agreement/0x1f", "0x1f")):
        c.open(hash_)
        assert c.page.inner_text("main .error").startswith(f"“{written}” is not a record number"), hash_
    # A filter the API refuses (edited in the address): what to do, above the API's own words.
    c.open("catalog?share_type=bogus")
    headline, detail = c.page.inner_text("main .error").split("\n", 1)
    detail = detail.strip()
    assert "correct what its message below names" in headline and detail.startswith(
        "VALIDATION_ERROR: share_type"
    )


@contextmanager
def upstream_host_proxy(api_url: str) -> Iterator[str]:
    """A reverse proxy in front of the API as nginx's defaults make one: each request goes on with the Host
    header of the upstream (the API's own address), not the one the browser sent. Yields its address."""
    upstream = httpx.Client(base_url=api_url, timeout=60, verify=tls_context())
    hop = {"host", "connection", "content-length", "transfer-encoding", "date", "server"}

    class Forward(BaseHTTPRequestHandler):
        def forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
            answer = upstream.request(
                self.command, self.path, headers=headers, content=self.rfile.read(length) if length else None
            )
            self.send_response(answer.status_code)
            for name, value in answer.headers.multi_items():
                if name.lower() not in hop | {"content-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = forward

        def log_message(self, *_: Any) -> None:
            pass

    try:
        with serving(Forward) as url:
            yield url
    finally:
        upstream.close()


def test_a_list_longer_than_a_page_of_the_api_is_read_whole_behind_a_proxy(
    browser: Any, api_env: ApiEnv, hostile: dict[str, int]
) -> None:
    with upstream_host_proxy(api_env.url) as proxy:
        # The API's next link names no host: the proxy's clients follow it through the proxy.
        listed = api_env.client.get(
            f"{proxy}/deliveries?resource_id={hostile['resource']}&limit=500",
            headers=api_env.headers("auditor"),
        )
        assert listed.headers["link"].startswith("</deliveries?") and len(listed.json()) == 500
        c = Console(browser, dataclasses.replace(api_env, url=proxy), "auditor")
        try:
            c.open(f"resource/{hostile['resource']}")
            status = c.page.inner_text("#resource-deliveries + .pager [role=status]")
            assert status == "rows 1\u201350 of 510"
        finally:
            c.close()  # every request the page made went to the proxy
