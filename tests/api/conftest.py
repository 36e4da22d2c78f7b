"""API test fixtures: one deployment per module on the worker's embedded node, served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from node.anvil import EmbeddedNode
from tests.api.api_helpers import ApiEnv, api_home, make_settings, served
from tests.api.console_browser import launched


@pytest.fixture(scope="module")
def api_env(
    request: pytest.FixtureRequest, embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiEnv]:
    """The module's deployment, served. A module whose inspections cover its own deliveries declares a short
    ``EVALUATION_PERIOD`` (seconds): an inspection covers whole evaluation periods, over, and its tests move
    the shared node's clock past the period's end (``api_helpers.own_period``), which 30 days would make years
    ahead for every later test."""
    overrides = {}
    if (period := getattr(request.module, "EVALUATION_PERIOD", None)) is not None:
        overrides["evaluation_period"] = period
    home = api_home(tmp_path_factory, "api-home")
    with served(make_settings(home, embedded_node, **overrides), embedded_node) as env:
        yield env


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the test process, shared by every module's console tests."""
    with launched() as chromium:
        yield chromium
