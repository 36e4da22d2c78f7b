"""Write the assertion-rewritten bytecode of the test modules and conftest files, as pytest writes it on their
first import (``__pycache__/<name>.<tag>-pytest-<version>.pyc``), once at set-up.

On a fresh clone every test worker of ``make test`` rewrote and compiled every test module at the same moment
(some 3 s of CPU apiece, before any test ran); they now read what this wrote. It is pytest's own rewriting
(``_pytest.assertion.rewrite``), so the files are what pytest would write; pytest checks each against its
source's size and modification time, and rewrites a module edited since. Should a later pytest no longer offer
these functions, the script says so and writes nothing: pytest rewrites the modules itself, as before.

Usage: ``.venv/bin/python scripts/test-bytecode.py tests`` (``make setup`` runs it).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from fnmatch import fnmatch
from pathlib import Path

#: The files pytest rewrites here: its default ``python_files`` (pyproject.toml keeps them) and conftest.py.
PATTERNS = ("test_*.py", "*_test.py", "conftest.py")


def write(source: Path) -> None:
    from _pytest.assertion.rewrite import PYC_TAIL, _rewrite_test, _write_pyc_fp, get_cache_dir

    # No configuration: the only setting the rewriting reads is enable_assertion_pass_hook, unset here.
    stat, code = _rewrite_test(source, None)  # type: ignore[arg-type]
    cache = get_cache_dir(source)
    cache.mkdir(exist_ok=True)
    pyc = cache / (source.name[:-3] + PYC_TAIL)
    partial = pyc.with_name(f"{pyc.name}.{os.getpid()}")
    with partial.open("wb") as out:
        _write_pyc_fp(out, stat, code)
    partial.replace(pyc)  # complete or absent, as pytest's own writes


def main(roots: list[str]) -> int:
    try:
        from _pytest.assertion.rewrite import (  # noqa: F401
            PYC_TAIL,
            _rewrite_test,
            _write_pyc_fp,
            get_cache_dir,
        )
    except ImportError as exc:
        print(f"test bytecode left to pytest ({exc})", file=sys.stderr)
        return 0
    sources = [
        path
        for root in roots
        for path in sorted(Path(root).rglob("*.py"))
        if "__pycache__" not in path.parts and any(fnmatch(path.name, p) for p in PATTERNS)
    ]
    with ProcessPoolExecutor() as pool:
        list(pool.map(write, sources))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["tests"]))
