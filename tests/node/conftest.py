"""Fixtures of the chain client, deployment and provisioning tests: a ledger deployed and provisioned on the
worker's embedded node (tests/conftest.py), with keys in a temporary DXL_HOME."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from node import compiler
from node.anvil import EmbeddedNode
from node.chain import LedgerClient
from node.compiler import Artifact, load_artifact
from node.deploy import LEDGER_ARTIFACT
from node.keys import KeyStore
from node.provision import LedgerSetup, ensure_principals, setup_ledger
from node.settings import Settings, load_settings
from tests.api.api_helpers import TEST_SCRYPT_N
from tests.run_shared import once_per_run

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixture_build(tmp_path_factory: pytest.TempPathFactory) -> compiler.Build:
    """The build of the fixture project (tests/node/fixtures/contracts, laid out like the repository),
    compiled once per run: each solcjs run takes some 3 s of CPU, and the compiler's and the node's tests that
    only need its artifacts start from it. Compiled per worker, it was the same build three times."""

    def build() -> dict[str, Any]:
        base = tmp_path_factory.mktemp("fixture-build")
        shutil.copytree(FIXTURES / "contracts", base / "contracts")
        return asdict(compiler.compile_sources(base / "contracts" / "src", base_path=base))

    return compiler.Build(**once_per_run(tmp_path_factory, "fixture-build", build))


@pytest.fixture(scope="session")
def ledger_artifact() -> Artifact:
    return load_artifact(LEDGER_ARTIFACT)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dxl-demo-home")


@pytest.fixture(scope="module")
def demo_settings(demo_home: Path) -> Settings:
    settings = load_settings(home=demo_home, keystore_passphrase="test passphrase, not a secret")
    # The demo keys made beforehand with the tests' cheap work factor; the set-up finds them and makes none.
    ensure_principals(KeyStore.from_settings(settings, scrypt_n=TEST_SCRYPT_N))
    return settings


@pytest.fixture(scope="module")
def demo_ledger(embedded_node: EmbeddedNode, demo_settings: Settings) -> LedgerSetup:
    """The demo consortium on the module's node: 2 governors (2-of-2), auditor, 5 departments, 3 resources."""
    return setup_ledger(embedded_node.endpoint, demo_settings)


@pytest.fixture(scope="module")
def ledger(demo_ledger: LedgerSetup) -> LedgerClient:
    return demo_ledger.client


@pytest.fixture(scope="module")
def demo_keys(demo_ledger: LedgerSetup) -> KeyStore:
    return demo_ledger.keystore
