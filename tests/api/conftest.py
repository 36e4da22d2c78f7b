"""API test fixtures: one deployment per module on the worker's embedded node, served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from node.anvil import EmbeddedNode
from tests.api.api_helpers import ApiEnv, api_home, make_settings, served
from tests.api.console_browser import launched


@pytest.fixture(scope="module")
def api_env(embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    with served(make_settings(api_home(tmp_path_factory, "api-home"), embedded_node), embedded_node) as env:
        yield env


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the test process, shared by every module's console tests."""
    with launched() as chromium:
        yield chromium
