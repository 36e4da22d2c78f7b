"""``make test-shuffled`` runs the suite in a random order (pytest-randomly) from a seed it prints, and that
seed gives the same order again; every other run (``make test``, a plain ``pytest``) keeps the files' order,
the plugin being off in the project's ``addopts``. Collected only: these modules' tests are not run here."""

from __future__ import annotations

import re
import subprocess
import sys

from node.paths import PROJECT_ROOT

#: A few modules of cheap imports, 40-odd tests: a random order of them is never the files' by chance.
MODULES = ("tests/test_clock_waits.py", "tests/test_log_decoding.py", "tests/test_settings_passed_down.py")


def _collect(*options: str) -> str:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            *options,
            *MODULES,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _ids(output: str) -> list[str]:
    return [line for line in output.splitlines() if "::" in line]


def test_the_shuffled_run_prints_its_seed_and_the_seed_gives_its_order_again() -> None:
    shuffled = _collect("-p", "randomly")
    seed = re.search(r"^Using --randomly-seed=(\d+)$", shuffled, re.M)
    assert seed, shuffled
    names = re.findall(r"<Function (\S+)>", shuffled)
    again = _ids(_collect("-q", "-p", "randomly", f"--randomly-seed={seed[1]}"))
    assert [test.split("::")[-1] for test in again] == names
    plain = _ids(_collect("-q"))
    assert sorted(again) == sorted(plain) and again != plain
    # Unshuffled: the modules as named, each one's tests in the order the file defines them.
    assert [test.split("::")[0] for test in plain] == sorted(
        (test.split("::")[0] for test in plain), key=MODULES.index
    )
    assert plain[:3] == [
        "tests/test_clock_waits.py::test_no_test_sleeps_until_a_moment_of_the_wall_clock",
        "tests/test_clock_waits.py::test_the_check_finds_a_wait_for_the_next_second",
        "tests/test_clock_waits.py::test_the_check_finds_a_sleep_through_a_cache_ttl",
    ]


def test_make_test_shuffled_passes_the_seed_and_make_test_does_not_shuffle() -> None:
    def recipe(*args: str) -> str:
        run = subprocess.run(
            ["make", "--dry-run", "--no-print-directory", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        return next(line for line in run.stdout.splitlines() if " -m pytest " in line)

    assert "-p randomly --randomly-seed=1234 " in recipe("test-shuffled", "SEED=1234")
    assert "--randomly-seed" not in recipe("test-shuffled") and " -p randomly " in recipe("test-shuffled")
    assert "randomly" not in recipe("test")
