"""The TLS settings of the project's HTTP clients, built once per process.

Every client otherwise builds its own context and reads the whole CA bundle for it (~20 ms of CPU): the
JSON-RPC client (:mod:`node.rpc`: the ledger client's, and the audit trail's per audit request, index round
and ``dxl audit`` command) and the commands that call the API (a request per page of a list, and the
department codes read before it) each paid it again.
"""

from __future__ import annotations

import functools
import os
import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate authorities of ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when the environment names them,
    certifi's bundle otherwise, certificate and host name checked (httpx's defaults, built here without
    importing httpx: some 100 ms of a command's start), shared by every client of the process."""
    if file := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=file)
    if folder := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=folder)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
