"""A receipt whose rows in the service's receipt journal were changed behind its back (the API database
edited or cut by hand): ``POST /verify`` says what the journal no longer agrees with, and ``GET /receipts``
shows the receipt as ``corrupt``, never a 500. Evidence of tampering is an answer an auditor can read."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.anvil import EmbeddedNode
from tests.api.api_helpers import ApiEnv, api_home, make_settings, ok, served, until
from tests.api.test_verify_receipts import codes, delivered

pytestmark = pytest.mark.xdist_group("api-receipt-journal-tamper")


@pytest.fixture(scope="module")
def api_env(embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    """Batches closed at two receipts (one posted with a second is anchored at once)."""
    base = make_settings(api_home(tmp_path_factory, "journal-tamper"), embedded_node)
    settings = base.model_copy(update={"receipt_batch_size": 2, "receipt_batch_age": 3600.0})
    with served(settings, embedded_node) as env:
        yield env


_ITS_BATCH = "(SELECT batch_id FROM api_receipts WHERE delivery_id = :did)"
#: What was done to the journal, and what the answer says of it.
TAMPERING = {
    "commitment-edited": (
        "UPDATE api_receipts SET commitment = randomblob(32) WHERE delivery_id = :did",
        "is not the receipt batch",
    ),
    "byte-size-not-a-number": (
        "UPDATE api_receipts SET byte_size = 'lots' WHERE delivery_id = :did",
        "holds 'lots' as its byte_size",
    ),
    "row-moved-out-of-its-batch": (
        "UPDATE api_receipts SET seq = seq + 100000 WHERE delivery_id = :did",
        "is not the receipt batch",
    ),
    "batch-deleted": (
        f"DELETE FROM api_receipt_batches WHERE id = {_ITS_BATCH}",
        "which the journal does not hold",
    ),
    "batch-state-unknown": (
        f"UPDATE api_receipt_batches SET state = 'bogus' WHERE id = {_ITS_BATCH}",
        "in state 'bogus', which the service never writes",
    ),
    # The slot a batch fills is in no leaf and no root: held to what the anchorer closed, or the chain's log
    # of its anchor. Edited, it read as the pending receipt of a batch never mined.
    "batch-first-sequence-edited": (
        f"UPDATE api_receipt_batches SET first_sequence = first_sequence + 7 WHERE id = {_ITS_BATCH}",
        "its bookkeeping was changed after it closed",
    ),
    "batch-leaf-count-edited": (
        f"UPDATE api_receipt_batches SET leaf_count = leaf_count + 1 WHERE id = {_ITS_BATCH}",
        "its bookkeeping was changed after it closed",
    ),
    "batch-grant-edited": (
        f"UPDATE api_receipt_batches SET grant_id = grant_id + 1 WHERE id = {_ITS_BATCH}",
        "names grant",
    ),
    "batch-provider-edited": (
        f"UPDATE api_receipt_batches SET provider = provider + 1 WHERE id = {_ITS_BATCH}",
        "names grant",
    ),
    "batch-root-cut": (
        f"UPDATE api_receipt_batches SET root = x'00' WHERE id = {_ITS_BATCH}",
        "as its root, not 32 bytes",
    ),
    # The consumer is in no leaf, root or slot either: edited, the receipt read final, shown with its proof
    # to the department the row named and hidden from the grant's consumer. Held to its anchor's log.
    "consumer-edited": (
        "UPDATE api_receipts SET consumer = consumer + 1 WHERE delivery_id = :did",
        "names consumer",
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_verify_receiptJournalChangedByHand_answersWhatIsWrongNot500(
    api_env: ApiEnv, tmp_path: Path, how: str
) -> None:
    _, manifest, did = delivered(api_env, tmp_path, anchored=True)
    until(lambda: ok(api_env.call("GET", f"/receipts/{did}", "psb"))["status"] == "final", "the batch mined")
    tampering, said = TAMPERING[how]
    with sqlite3.connect(api_env.settings.home / "dxl.sqlite3") as conn:
        assert conn.execute(tampering, {"did": bytes.fromhex(did[2:])}).rowcount == 1
    for who in ("auditor", "psb"):
        verdict = ok(api_env.call("POST", "/verify", who, json={"manifest": manifest}))
        assert verdict["status"] == "NOT_RECORDED", verdict
        assert "RECEIPT_JOURNAL_CORRUPT" in codes(verdict), verdict
        finding = next(f for f in verdict["findings"] if f["code"] == "RECEIPT_JOURNAL_CORRUPT")
        assert said in finding["message"] and "changed outside the service" in finding["message"], finding
        view = ok(api_env.call("GET", f"/receipts/{did}", who))
        assert (view["delivery_id"], view["status"], view["proof"]) == (did, "corrupt", None), view
        assert said in view["error"], view
        listed = ok(api_env.call("POST", "/receipts/lookup", who, json={"delivery_ids": [did]}))
        assert [r["status"] for r in listed["receipts"]] == ["corrupt"], listed
    # Nothing else of the journal is taken for it: a receipt posted since is anchored and proven as before.
    following = tmp_path / "following"
    following.mkdir()
    _, other, other_id = delivered(api_env, following, anchored=True)
    until(lambda: ok(api_env.call("GET", f"/receipts/{other_id}", "psb"))["status"] == "final", "mined")
    assert ok(api_env.call("POST", "/verify", "auditor", json={"manifest": other}))["status"] == "MATCH"


def test_lookup_batchSlotEditedWhileStopped_heldToTheChainsLogOfItsAnchor(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """A reader that never saw the batch close (the service started again after the edit) rebuilds its tree
    from the journal and takes its slot from the log of the batch's anchor on chain, not from the row."""
    from api.db import make_engine
    from api.receipts.lookups import ReceiptReader
    from api.receipts.service import anchored_batch
    from node.deploy import anchors_client

    _, _, did = delivered(api_env, tmp_path, anchored=True)
    until(lambda: ok(api_env.call("GET", f"/receipts/{did}", "psb"))["status"] == "final", "the batch mined")
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    engine = make_engine(f"sqlite:///{api_env.settings.home / 'dxl.sqlite3'}")
    try:
        [view] = ReceiptReader(engine, anchored=anchored_batch(anchors)).lookup([bytes.fromhex(did[2:])],
                                                                               reader=None)  # fmt: skip
        assert view.status == "final" and view.proof is not None, view
        first = view.proof.first_sequence
        with sqlite3.connect(api_env.settings.home / "dxl.sqlite3") as conn:
            edit = (
                f"UPDATE api_receipt_batches SET first_sequence = first_sequence + 2 WHERE id = {_ITS_BATCH}"
            )
            assert conn.execute(edit, {"did": bytes.fromhex(did[2:])}).rowcount == 1
        [view] = ReceiptReader(engine, anchored=anchored_batch(anchors)).lookup([bytes.fromhex(did[2:])],
                                                                               reader=None)  # fmt: skip
        assert view.status == "corrupt" and view.proof is None, view
        assert f"holds receipts {first + 2} to" in str(view.error), view.error
        assert f"the batch anchored holds {first} to" in str(view.error), view.error
    finally:
        engine.dispose()


def test_dxl_verify_batchSlotEdited_theJournalsReceiptIsCorruptNotPending(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """``dxl verify PAYLOAD`` on the service's machine reads the receipt from the journal with a reader of its
    own, which never saw the batch close: the batch's slot is held to the chain's log of its anchor there
    too, and an edited first sequence is evidence of tampering, not a receipt waiting for its batch."""
    from tests.cli import dxl

    payload, _, did = delivered(api_env, tmp_path, anchored=True)
    until(lambda: ok(api_env.call("GET", f"/receipts/{did}", "psb"))["status"] == "final", "the batch mined")
    with sqlite3.connect(api_env.settings.home / "dxl.sqlite3") as conn:
        edit = f"UPDATE api_receipt_batches SET first_sequence = first_sequence + 7 WHERE id = {_ITS_BATCH}"
        assert conn.execute(edit, {"did": bytes.fromhex(did[2:])}).rowcount == 1
    code, out, err = dxl("verify", payload, "--json")
    verdict = json.loads(out)
    assert (code, verdict["status"]) == (1, "NOT_RECORDED"), out + err
    assert "RECEIPT_JOURNAL_CORRUPT" in codes(verdict), verdict


def test_audit_report_receiptJournalChangedByHand_refusedNamingTheRow(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """``dxl audit report --receipts`` carries each anchored batch's receipts from the journal: a row the
    service never wrote stopped it with a traceback; it is refused, naming the row, and nothing is written."""
    from typer.testing import CliRunner

    from dxl.app import app as cli

    _, _, did = delivered(api_env, tmp_path, anchored=True)
    until(lambda: ok(api_env.call("GET", f"/receipts/{did}", "psb"))["status"] == "final", "the batch mined")
    ok(api_env.call("POST", "/audit/index", "auditor"))
    with sqlite3.connect(api_env.settings.home / "dxl.sqlite3") as conn:
        seq = conn.execute("SELECT seq FROM api_receipts WHERE delivery_id = ?", (bytes.fromhex(did[2:]),))
        row = seq.fetchone()[0]
        conn.execute("UPDATE api_receipts SET record_count = 'many' WHERE seq = ?", (row,))
    out = tmp_path / "report"
    made = CliRunner().invoke(cli, ["audit", "report", "--department", "PSB", "--receipts", "--out", str(out),
                                    "--to", "2200-01-01", "--json"])  # fmt: skip
    assert made.exit_code == 2, made.output
    error = json.loads(made.stdout)
    assert error["error"] == "RECEIPT_JOURNAL_CORRUPT", error
    # This row, or one the module's other tests changed before (the report covers PSB's every batch).
    assert re.search(r"row \d+ holds '(many|lots)' as its (record_count|byte_size)", error["message"]), error
    assert not out.exists() or not any(out.iterdir())
