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
#: As the README's run: `DXL_EVALUATION_PERIOD=86400 dxl run`, the script moving the node's clock to the end
#: of the period it delivers in, the whole period an inspection covers.
EVALUATION_PERIOD = 86400

ROOT = Path(__file__).resolve().parents[2]


def _shown() -> tuple[list[str], list[str]]:
    """README's walkthrough block: its `$ ` commands, each joined where the README continues it (`\\`), and
    its output lines, the scorecard's JSON joined again where the README wraps it (a continuation starts with
    one space)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = "$ dxl demand publish" + readme.split("```text\n$ dxl demand publish", 1)[1].split("```", 1)[0]
    commands: list[str] = []
    lines: list[str] = []
    command = False
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append(line.removesuffix("\\").rstrip())
        elif command:
            commands[-1] += " " + line.removesuffix("\\").strip()
        elif re.match(r" \S", line):
            lines[-1] += line[1:]
        else:
            lines.append(line)
        command = line.endswith("\\")
    return commands, lines


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
    # top of the inspection's seed block); the module's node mines a block per transaction only.
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
    commands, shown = _shown()
    assert len(shown) == 48, shown
    assert [_shape(line) for line in printed] == [_shape(line) for line in shown]
    # The commands it ran are the README's, as far as it prints them (it leaves out long texts: `...`), but
    # for the payload presented, which the draw chooses.
    ran = [line.removesuffix("...").rstrip() for line in run.stdout.splitlines() if line.startswith("$ ")]
    ran, commands = ([re.sub(r"batch[12]\.csv", "batch?.csv", c) for c in cs] for cs in (ran, commands))
    assert len(ran) == len(commands) == 12, (ran, commands)
    for script, readme in zip(ran, commands, strict=True):
        assert _shape(readme).startswith(_shape(script)), (script, readme)
