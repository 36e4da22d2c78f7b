"""README's walkthrough of demand lists, evaluation and inspection: `scripts/practice-walkthrough.sh`, run as
the README says (a fresh ledger, its API, `dxl` on PATH), prints what the README shows, line for line, but for
the hashes, times, blocks and periods of another run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.api.api_helpers import PASSPHRASE, ApiEnv, mine

# One deployment per module (the script answers demand 1 and inspection 1): keep it on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-practice-walkthrough")

ROOT = Path(__file__).resolve().parents[2]


def _shown_output() -> list[str]:
    """The output lines of README's walkthrough block: its `$ ` commands and their continuations left out, the
    scorecard's JSON joined again where the README wraps it (a continuation starts with one space)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```text\n$ dxl demand publish", 1)[1].split("```", 1)[0]
    lines: list[str] = []
    command = True  # the block opens inside the first command
    for line in block.splitlines():
        if line.startswith("$ ") or command:
            command = line.endswith("\\")
        elif re.match(r" \S", line):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def _shape(line: str) -> str:
    """A line with what differs between two runs made alike: hashes and ids (shortened or not), numbers of
    two digits or more (times, blocks, periods) and the node's URL."""
    line = re.sub(r"0x[0-9a-fA-F]+(…[0-9a-fA-F]+)?", "0x…", line)
    line = re.sub(r"http://\S+", "URL", line)
    return re.sub(r"\d{2,}", "N", line)


def test_the_practice_walkthrough_prints_what_the_readme_shows(api_env: ApiEnv) -> None:
    home = api_env.settings.home
    (home / "secrets" / "keystore-passphrase").write_text(PASSPHRASE)
    env = {
        **os.environ,
        "DXL_API_URL": api_env.url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    # `dxl run`'s node mines a block a second with nothing to mine, which the script waits for (the block on
    # top of the inspection's seed block); the worker's node mines a block per transaction only.
    done = threading.Event()

    def mine_a_block_a_second() -> None:
        while not done.wait(1.0):
            mine(api_env)

    miner = threading.Thread(target=mine_a_block_a_second)
    miner.start()
    try:
        run = subprocess.run(
            [str(ROOT / "scripts" / "practice-walkthrough.sh")],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    finally:
        done.set()
        miner.join()
    assert run.returncode == 0, run.stdout + run.stderr
    printed = [line for line in run.stdout.splitlines() if line and not line.startswith("$ ")]
    shown = _shown_output()
    assert len(shown) == 16, shown
    assert [_shape(line) for line in printed] == [_shape(line) for line in shown]
