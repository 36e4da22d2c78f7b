"""What one test process of a run makes and every other one of the same run reads: the first xdist worker to
need it makes it while the others wait, so an expensive, deterministic input is paid once per run, not once
per worker."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def run_directory(factory: pytest.TempPathFactory) -> Path:
    """The run's base temporary directory, which every xdist worker of the run shares (each worker's own
    ``basetemp`` is a folder of it); without xdist, the process's own."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(factory: pytest.TempPathFactory, name: str, make: Callable[[], Any]) -> Any:
    """``make()`` (a JSON value) made by the first process of the run to ask for ``name``, read back by the
    others. The lock is held while it is made: the others wait for it rather than make it again."""
    path = run_directory(factory) / f"{name}.json"
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        value = make()
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(value), encoding="utf-8")
        partial.replace(path)
        return value
