"""Commitment throughput benchmark: ``dxl commit`` against ``openssl dgst -sha256`` on the same file.

Both read the same (page-cached) file in one run, so the ratio compares hashing pipelines, not disks. Peak
memory is measured in a fresh child process per payload size (``ru_maxrss`` is a high-water mark, so it has
to be a new process each time) to show that memory does not grow with payload size.

    .venv/bin/python -m verifier.bench --size 1G
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from verifier.commitment import commit_payload, new_salt
from verifier.hashing import HashAlgorithm
from verifier.leaves import DEFAULT_CHUNK_SIZE, Chunking, PayloadFormat
from verifier.units import format_size, parse_size

_WRITE_BLOCK = 4 << 20


def make_payload(path: Path, size_bytes: int) -> None:
    """Write ``size_bytes`` of random data in bounded blocks (random so no layer can compress it)."""
    block = os.urandom(_WRITE_BLOCK)
    with open(path, "wb") as f:
        left = size_bytes
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
            # Vary the block cheaply so the payload is not one block repeated.
            block = block[1:] + block[:1]


def _child_commit(path: str, alg: int, chunk_size: int, workers: int | None) -> dict[str, Any]:
    start = time.perf_counter()
    c = commit_payload(
        path,
        alg=HashAlgorithm(alg),
        salt=new_salt(),
        chunking=Chunking(PayloadFormat.BYTES, chunk_size),
        workers=workers,
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "byte_size": c.byte_size,
        "leaf_count": c.leaf_count,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _commit_in_child(path: Path, alg: HashAlgorithm, chunk_size: int, workers: int | None) -> dict[str, Any]:
    args = [sys.executable, "-m", "verifier.bench", "--child", str(path), str(int(alg)), str(chunk_size)]
    args.append(str(workers or 0))
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _time_openssl(path: Path) -> float:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("openssl is not on PATH")
    start = time.perf_counter()
    subprocess.run([openssl, "dgst", "-sha256", str(path)], check=True, capture_output=True)
    return time.perf_counter() - start


def run_commit_benchmark(
    size_bytes: int = 1 << 30,
    *,
    path: str | os.PathLike[str] | None = None,
    small_bytes: int = 100 * 10**6,
    alg: HashAlgorithm = HashAlgorithm.SHA256,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    repeats: int = 2,
) -> dict[str, Any]:
    """Time our commit against ``openssl dgst -sha256`` on a ``size_bytes`` file and compare peak memory.

    ``path``: an existing file to use instead of generating one (then ``size_bytes`` is its size). Each tool
    runs ``repeats`` times, alternating, and the best time counts (the first read may warm the page cache).

    Returns:
        A dict with ``size_bytes``, ``ours_gbps``, ``openssl_gbps``, ``ratio`` (ours / openssl), the seconds,
        and ``peak_rss`` for the small and the full size (bytes), plus ``rss_growth`` (full / small).
    """
    with tempfile.TemporaryDirectory(prefix="dxl-bench-") as tmp:
        if path is None:
            big = Path(tmp) / "payload.bin"
            make_payload(big, size_bytes)
        else:
            big = Path(path)
            size_bytes = big.stat().st_size
        small = Path(tmp) / "small.bin"
        make_payload(small, min(small_bytes, size_bytes))

        ours: list[float] = []
        theirs: list[float] = []
        big_run: dict[str, Any] = {}
        for _ in range(max(1, repeats)):
            theirs.append(_time_openssl(big))
            big_run = _commit_in_child(big, alg, chunk_size, workers)
            ours.append(big_run["seconds"])
        small_run = _commit_in_child(small, alg, chunk_size, workers)

    ours_s, theirs_s = min(ours), min(theirs)
    return {
        "size_bytes": size_bytes,
        "algorithm": alg.label,
        "chunk_size": chunk_size,
        "workers": workers or os.cpu_count(),
        "ours_seconds": ours_s,
        "openssl_seconds": theirs_s,
        "ours_gbps": size_bytes / ours_s / 1e9,
        "openssl_gbps": size_bytes / theirs_s / 1e9,
        "ratio": theirs_s / ours_s,
        "peak_rss": {
            str(small_run["byte_size"]): small_run["peak_rss_bytes"],
            str(size_bytes): big_run["peak_rss_bytes"],
        },
        "rss_growth": big_run["peak_rss_bytes"] / small_run["peak_rss_bytes"],
    }


def render(result: dict[str, Any]) -> str:
    """Human-readable summary of :func:`run_commit_benchmark`'s result."""
    lines = [
        f"payload      {format_size(result['size_bytes'])} ({result['algorithm']}, "
        f"{format_size(result['chunk_size'])} chunks, {result['workers']} workers)",
        f"dxl commit   {result['ours_gbps']:.2f} GB/s ({result['ours_seconds']:.2f} s)",
        f"openssl dgst {result['openssl_gbps']:.2f} GB/s ({result['openssl_seconds']:.2f} s)",
        f"ratio        {result['ratio']:.2f}x openssl"
        + ("" if result["algorithm"] == "sha256" else " (openssl runs SHA-256; not like for like)"),
    ]
    for size, rss in result["peak_rss"].items():
        lines.append(f"peak RSS     {format_size(rss)} committing {format_size(int(size))}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        path, alg, chunk, workers = argv[1], int(argv[2]), int(argv[3]), int(argv[4]) or None
        print(json.dumps(_child_commit(path, alg, chunk, workers)))
        return 0
    size = parse_size(argv[argv.index("--size") + 1]) if "--size" in argv else 1 << 30
    print(render(run_commit_benchmark(size)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
