"""``dxl bench catalog``: catalog search and export latency through HTTP as the catalog grows.

One run, one throw-away ``DXL_HOME``: the embedded node, the demo consortium and the API in a process of its
own (:func:`api.bench.demo_service`). The catalog is grown in steps to each size of ``sizes``: the resources
are registered on chain by one department's key, sent in bulk (what a department's own tooling does when it
catalogues thousands of resources at once), and their documents stored through the service's own import path
(``POST /resources/import``). At each size, each request below is timed ``repeats`` times (the median and the
slowest are reported), after one untimed request that brings the audit index up to the chain:

* ``first_page``: ``GET /resources`` (100 entries);
* ``search_rare``: ``GET /resources?q=…`` for a word one entry in :data:`RARE_EVERY` carries;
* ``search_common``: ``GET /resources?q=…`` for a word every entry carries;
* ``share_type``: ``GET /resources?share_type=not_shared`` (a third of the entries);
* ``owner``: ``GET /resources?owner=PSB`` (a department holding the three demo resources only);
* ``export_json``, ``export_csv``: ``GET /resources/export`` (the whole catalog).

Beside each request's times, the service's peak resident memory while it was timed (``peak_rss_mib``: the
process's high-water mark, reset before the request's first run) and its resident memory before
(``rss_before_mib``), so that what a request holds in memory shows as the difference.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from verifier.text import counted

#: One entry in this many carries the rare search word.
RARE_EVERY = 500
RARE_WORD = "稀有词"
COMMON_WORD = "人口"
#: Documents per ``POST /resources/import`` (its bound is 2,000 entries and 4 MiB of body).
IMPORT_CHUNK = 1000
_SHARE_TYPES = (0, 1, 2)  # node.types.ShareType values: unconditional, conditional, not shared


def document(i: int) -> dict[str, Any]:
    """The ``i``-th generated catalog document (valid as :class:`api.models.CatalogDocument`)."""
    rare = f" {RARE_WORD}" if i % RARE_EVERY == 0 else ""
    return {
        "dct:title": f"{COMMON_WORD}资源 {i} register{rare}",
        "dct:description": f"第 {i} 号数据资源：本市{COMMON_WORD}与登记信息的汇总 (benchmark entry {i})",
        "dcat:keyword": [f"k{i % 97}", "登记"],
        "csvw:column": [
            {"csvw:name": "person_id", "csvw:datatype": "string", "dct:description": "公民身份号码"},
            {"csvw:name": f"field_{i % 13}", "csvw:datatype": "integer"},
        ],
        "dcat:mediaType": "text/csv",
        "dct:accrualPeriodicity": "daily",
        "dct:accessRights": "申请部门须提供法定职责依据",
        "dcat:contactPoint": {"vcard:fn": "数据管理处", "vcard:hasEmail": "data@civil.example.gov.cn"},
        "dcatap:applicableLegislation": "《政务数据共享条例》",
    }


def grow(
    *, ledger: Any, account: Any, store: Callable[[list[dict[str, Any]]], Any], start: int, stop: int
) -> None:
    """Registers the resources of documents ``start`` .. ``stop - 1`` on chain as ``account`` (sent in bulk,
    then waited for) and stores their documents with ``store`` (``POST /resources/import``'s ``resources``,
    :data:`IMPORT_CHUNK` at a time)."""
    from verifier.catalog import document_hash

    docs = [document(i) for i in range(start, stop)]
    sender = str(account.address)
    # Every registration costs the same gas (fixed-size arguments): estimated once.
    gas = ledger.build(sender, "registerResource", document_hash(docs[0]), os.urandom(32), 1, 2)["gas"]
    pending = [
        ledger.submit(account, ledger.build(sender, "registerResource", document_hash(doc), os.urandom(32),
                                            _SHARE_TYPES[(start + k) % 3], 2, gas=gas))
        for k, doc in enumerate(docs)
    ]  # fmt: skip
    mined = ledger.wait_all(pending, timeout=max(120.0, len(pending) / 20))
    ids = [int(r.event("ResourceRegistered").args["resourceId"]) for r in mined]
    for at in range(0, len(docs), IMPORT_CHUNK):
        chunk = zip(ids[at : at + IMPORT_CHUNK], docs[at : at + IMPORT_CHUNK], strict=True)
        store([{"id": i, "metadata": d} for i, d in chunk])


def _memory_mib(pid: int, field: str) -> float:
    """A ``/proc/<pid>/status`` memory field (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"/proc/{pid}/status holds no {field}")


def _timed(get: Callable[[], Any], repeats: int, pid: int | None) -> dict[str, float]:
    """Median and slowest time of ``repeats`` calls of ``get``; with ``pid``, that process's resident memory
    before and its peak over the calls (Linux: writing 5 to ``clear_refs`` resets the high-water mark)."""
    memory = {}
    if pid is not None:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        memory["rss_before_mib"] = _memory_mib(pid, "VmRSS")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        get()
        times.append(time.perf_counter() - started)
    if pid is not None:
        # The kernel keeps the high-water mark lazily (per-thread counters, raised on some events only): a
        # VmHWM read after the calls was once below the VmRSS read before them. The peak over the calls is
        # at least where they started.
        memory["peak_rss_mib"] = max(_memory_mib(pid, "VmHWM"), memory["rss_before_mib"])
    return {"median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4), **memory}


#: The requests timed at each size: name, path, query.
REQUESTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("first_page", "/resources", {}),
    ("search_rare", "/resources", {"q": RARE_WORD}),
    ("search_common", "/resources", {"q": COMMON_WORD}),
    ("share_type", "/resources", {"share_type": "not_shared"}),
    ("owner", "/resources", {"owner": "PSB"}),
    ("export_json", "/resources/export", {}),
    ("export_csv", "/resources/export", {"format": "csv"}),
)


def measure(
    *,
    get: Callable[..., Any],
    grow_to: Callable[[int, int], Any],
    head: Callable[[], int],
    sizes: list[int],
    repeats: int,
    pid: int | None = None,
    progress: Callable[[str], Any] = print,
) -> list[dict[str, Any]]:
    """At each of ``sizes`` (ascending): ``grow_to(made, size)`` adds the generated resources up to it, then
    each request of :data:`REQUESTS` is timed ``repeats`` times through ``get(path, **query)`` (which answers
    the 200 response, or raises), with the memory of the service's process ``pid`` when given. One row per
    size."""
    rows, made = [], 0
    for size in sorted(sizes):
        progress(f"growing the catalog to {size:,} generated resources ...")
        started = time.perf_counter()
        grow_to(made, size)
        grown_s, made = time.perf_counter() - started, size
        started = time.perf_counter()
        get("/resources", min_block=head(), limit=1)
        indexed_s = time.perf_counter() - started
        total = len(get("/resources/export").json())
        progress(f"timing {repeats} of each request over {total:,} entries ...")
        row: dict[str, Any] = {"resources": total, "grown_s": round(grown_s, 1),
                               "index_catch_up_s": round(indexed_s, 2)}  # fmt: skip
        for name, path, query in REQUESTS:
            row[name] = _timed(lambda p=path, q=query: get(p, **q), repeats, pid)  # type: ignore[misc]
        row["search_rare"]["found"] = len(get("/resources", q=RARE_WORD, limit=500).json())
        rows.append(row)
    return rows


def run_catalog_benchmark(
    *, sizes: list[int], repeats: int, environ: Mapping[str, str], progress: Callable[[str], Any] = print
) -> dict[str, Any]:
    """:func:`measure` on a fresh node and demo service (CIVIL's resources); returns the JSON the command
    writes."""
    from api.bench import demo_service
    from node.anvil import EmbeddedNode, NodeSettings, free_port
    from node.deploy import ledger_client
    from node.keys import KeyStore

    results: dict[str, Any] = {"repeats": repeats, "cpus": os.cpu_count(),
                               "load_average_at_start": list(os.getloadavg())}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dxl-bench-catalog-") as tmp:
        home = Path(tmp)
        with EmbeddedNode(home, NodeSettings(port=free_port())) as node:
            progress("provisioning the demo consortium ...")
            with demo_service(home, node.endpoint, environ=environ, timeout=600) as service:
                ledger = ledger_client(node.endpoint, home, request_timeout=service.settings.rpc_timeout)
                account = KeyStore.from_settings(service.settings).unlock("dept-civil")
                headers = {"Authorization": f"Bearer {service.tokens['demo-auditor']}"}

                def get(path: str, **query: Any) -> Any:
                    r = service.api.get(path, params=query, headers=headers)
                    if r.status_code != 200:
                        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
                    return r

                def grow_to(start: int, stop: int) -> None:
                    def store(entries: list[dict[str, Any]]) -> None:
                        service.call("POST", "/resources/import", "demo-civil", {"resources": entries})

                    grow(ledger=ledger, account=account, store=store, start=start, stop=stop)

                results["sizes"] = measure(get=get, grow_to=grow_to, head=ledger.block_number, sizes=sizes,
                                           repeats=repeats, pid=service.pid, progress=progress)  # fmt: skip
    results["load_average_at_end"] = list(os.getloadavg())
    return results


def table(results: dict[str, Any]) -> str:
    """Median (slowest) seconds of each request at each size; then, where measured, the service's resident
    memory before and its peak during each request."""
    names = [name for name, _, _ in REQUESTS]
    head = f"{'resources':>10} " + " ".join(f"{n:>18}" for n in names)
    lines = [head, "-" * len(head)]
    for row in results["sizes"]:
        cells = " ".join(f"{row[n]['median_s']:>9.4f} ({row[n]['max_s']:.3f})" for n in names)
        lines.append(f"{row['resources']:>10,} {cells}")
    lines.append(f"median (slowest) seconds of {counted(results['repeats'], 'request')} each; "
                 f"load average {results['load_average_at_start'][0]:.1f} at start")  # fmt: skip
    measured = [row for row in results["sizes"] if "peak_rss_mib" in row[names[0]]]
    for row in measured:
        cells = " ".join(f"{row[n]['rss_before_mib']:>8.1f}->{row[n]['peak_rss_mib']:<8.1f}" for n in names)
        lines.append(f"{row['resources']:>10,} {cells}")
    if measured:
        lines.append("the service's resident memory before -> its peak during each request, MiB")
    return "\n".join(lines)
