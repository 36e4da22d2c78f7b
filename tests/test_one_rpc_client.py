"""The code base reads the chain through one JSON-RPC client: :class:`verifier.rpc.JsonRpc` (framing, errors,
pinning; on the standard library for ``dxl verify``) and, above it, :class:`node.rpc.JsonRpc` (its kept-alive
transport, batches and failover), which the audit trail calls and the ledger client's web3 posts through.

Two clients had grown apart before (web3's HTTPProvider over a transport of its own beside the audit trail's
httpx client): each with its own failover, timeouts and error types. This test reads the sources, as
import-linter reads imports, so that a second one is refused when it is written, not found later: no module
below the command line but the two client modules writes a JSON-RPC request, imports an HTTP client for the
chain, or makes one of web3's own providers. (``tests/node/test_chain.py`` checks the ledger client's web3
posts through the one client at run time.)
"""

from __future__ import annotations

import ast
import functools

import pytest

from node.paths import PROJECT_ROOT

PACKAGES = ("node", "api", "verifier", "dxl")
#: The one client: the verifier's, and the node layer's transport under it.
CLIENT = {"verifier/rpc.py", "node/rpc.py"}
#: HTTP client libraries (top-level module names).
HTTP_CLIENTS = {"urllib3", "requests", "httpx", "aiohttp", "pycurl", "http.client", "urllib.request"}
#: Modules that may import an HTTP client for something that is not the chain, and why.
NOT_THE_CHAIN = {
    "api/bench.py": "the benchmarks' load generator, calling the service's HTTP API",
    "dxl/commands/practice.py": "calls the service's HTTP API",
}
#: web3's transports: none is made; the ledger client's provider (node.chain.NodeProvider) posts through the
#: one client.
WEB3_TRANSPORTS = {
    "HTTPProvider",
    "AsyncHTTPProvider",
    "IPCProvider",
    "WebSocketProvider",
    "LegacyWebSocketProvider",
    "AsyncIPCProvider",
    "EthereumTesterProvider",
}


#: The modules read, by path: listed at collection, parsed only by the worker that runs each test (parsed
#: at collection, every worker of `make test` parsed all of them, a second of CPU each).
PATHS = [
    str(p.relative_to(PROJECT_ROOT)) for top in PACKAGES for p in sorted((PROJECT_ROOT / top).rglob("*.py"))
]


@functools.cache
def _tree(path: str) -> ast.AST:
    return ast.parse((PROJECT_ROOT / path).read_text(encoding="utf-8"))


def _imported(tree: ast.AST) -> set[str]:
    """Modules ``tree`` imports, by their full dotted name and every prefix of it."""
    names: set[str] = set()
    for node in ast.walk(tree):
        found = []
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in found:
            parts = name.split(".")
            names |= {".".join(parts[: i + 1]) for i in range(len(parts))}
    return names


@pytest.mark.parametrize("path", PATHS)
def test_only_the_one_client_reaches_the_node(path: str) -> None:
    """No module but the client's writes a JSON-RPC request (``"jsonrpc"``), imports an HTTP client for the
    chain, or names one of web3's transports."""
    if path in CLIENT:
        return
    tree = _tree(path)
    writes = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == "jsonrpc"]
    assert not writes, f"{path} writes JSON-RPC requests itself (lines {writes}): use node.rpc.JsonRpc"
    clients = _imported(tree) & HTTP_CLIENTS
    assert not clients or path in NOT_THE_CHAIN, (
        f"{path} imports {sorted(clients)}: the chain is read through node.rpc.JsonRpc (or verifier.rpc's)"
    )
    named = {n.attr if isinstance(n, ast.Attribute) else n.id for n in ast.walk(tree)
             if isinstance(n, ast.Name | ast.Attribute)} | {a.name for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) for a in n.names}  # fmt: skip
    assert not named & WEB3_TRANSPORTS, f"{path} makes a web3 transport: {sorted(named & WEB3_TRANSPORTS)}"


def test_the_exceptions_are_still_needed() -> None:
    """Each module allowed an HTTP client for something else still imports one and names no JSON-RPC method:
    an exception left behind would let a second client in unnoticed."""
    for path in NOT_THE_CHAIN:
        assert _imported(_tree(path)) & HTTP_CLIENTS, f"{path} no longer needs its exception"
        strings = [
            n.value for n in ast.walk(_tree(path)) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        methods = [s for s in strings if s.startswith(("eth_", "net_", "debug_"))]
        assert not methods, (
            f"{path} names JSON-RPC methods {methods}: read the chain through node.rpc.JsonRpc"
        )
