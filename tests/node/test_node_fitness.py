"""The check after every test (tests/conftest.py, tests/node_fitness.py): a test that leaves its module's node
unfit for the next one fails by name, and the node is restored for the tests after it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from eth_account import Account

from node.anvil import EmbeddedNode
from node.endpoint import rpc_call
from tests import node_fitness

REPO = Path(__file__).resolve().parents[2]


def _transfer(node: EmbeddedNode, nonce: int) -> tuple[str, str]:
    """A free transfer of a new account to itself at ``nonce``: signed bytes and sender."""
    account = Account.create()
    signed = account.sign_transaction(
        {
            "to": account.address,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
            "nonce": nonce,
            "chainId": node.endpoint.chain_id,
        }
    )
    return "0x" + bytes(signed.raw_transaction).hex(), account.address


def test_mining_left_off_is_named_and_restored(embedded_node: EmbeddedNode) -> None:
    url = embedded_node.endpoint.rpc_url
    assert node_fitness.unfitness(url) is None
    rpc_call(url, "evm_setAutomine", [False])
    raw, sender = _transfer(embedded_node, 0)
    rpc_call(url, "eth_sendRawTransaction", [raw])
    unfit = node_fitness.unfitness(url)
    assert unfit is not None and "auto-mining False" in unfit and sender.lower() in unfit.lower()
    node_fitness.restore(url)
    assert node_fitness.unfitness(url) is None
    assert rpc_call(url, "eth_getTransactionCount", [sender, "latest"]) == "0x1"  # what was ready is mined


def test_a_transaction_behind_a_nonce_gap_is_named_and_dropped(embedded_node: EmbeddedNode) -> None:
    url = embedded_node.endpoint.rpc_url
    raw, sender = _transfer(embedded_node, 1)  # nonce 0 never comes: never mined
    rpc_call(url, "eth_sendRawTransaction", [raw])
    unfit = node_fitness.unfitness(url, settle_s=0.2)
    assert unfit is not None and "auto-mining True" in unfit and "'queued': '0x1'" in unfit
    assert sender.lower() in unfit.lower()
    node_fitness.restore(url)
    assert node_fitness.unfitness(url) is None


def test_the_test_that_leaves_the_node_unfit_fails_by_name_and_the_next_one_passes(tmp_path: Path) -> None:
    """A session of its own, with the suite's conftest: the test that turns mining off errors at its teardown,
    named; the test after it, whose transaction would never be mined, passes on the restored node."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_order.py").write_text(
        textwrap.dedent(
            """
            from eth_account import Account
            from node.endpoint import rpc_call

            def test_turns_mining_off(node_endpoint):
                rpc_call(node_endpoint.rpc_url, "evm_setAutomine", [False])

            def test_after_it(w3):
                account = Account.create()
                signed = account.sign_transaction({"to": account.address, "value": 0, "gas": 21_000,
                    "gasPrice": 0, "nonce": 0, "chainId": w3.eth.chain_id})
                w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), 10)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DXL_TEST_BLOCK_TIME", None)
    run = subprocess.run(
        # In the files' order (outside the project, its addopts do not turn pytest-randomly off): the point is
        # the test after the one that left the node unfit.
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-pno:cacheprovider",
            "-pno:xdist",
            "-pno:randomly",
            "test_order.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "ERROR at teardown of test_turns_mining_off" in out, out
    assert (
        "test_order.py::test_turns_mining_off (or a fixture torn down with it) left the module's node" in out
    ), out
    # The first passed its call and errs at its teardown; the second's transaction is mined.
    assert re.search(r"^2 passed, .*1 error", out, re.MULTILINE), out
