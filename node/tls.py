"""The TLS settings of the project's HTTP clients, built once per process.

Every client otherwise builds its own context and reads the whole CA bundle for it (~20 ms of CPU): the
JSON-RPC client (:mod:`node.rpc`: the ledger client's, and the audit trail's per audit request, index round
and ``dxl audit`` command) and the commands that call the API (a request per page of a list, and the
department codes read before it) each paid it again.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's certificate authorities (OpenSSL's default paths, which ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` move: where an operator installs a department's own authority) and certifi's bundle
    beside them, certificate and host name checked, shared by every client of the process. Built without
    httpx, whose import was some 100 ms of a command's start."""
    import certifi

    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    return context
