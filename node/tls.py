"""The TLS settings of the project's HTTP clients, built once per process.

Every client otherwise builds its own context and reads the whole CA bundle for it (~20 ms of CPU): the
JSON-RPC client (:mod:`node.rpc`: the ledger client's, and the audit trail's per audit request, index round
and ``dxl audit`` command) and the commands that call the API with httpx (a request per page of a list, and
the department codes read before it) each paid it again.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings (its CA bundle, certificate and host name checked), shared by every client
    of the process: pass it as ``verify=``."""
    import httpx

    return httpx.create_ssl_context()
