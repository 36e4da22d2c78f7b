"""How the service is served (api/server.py): what it logs, and where."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from node.anvil import free_port

# A real server on a free port, as `dxl run` configures it, answering one request and stopping.
_SERVE_ONE = textwrap.dedent(
    """
    import sys, threading, time, urllib.request
    import uvicorn
    from fastapi import FastAPI
    from api.server import server_config

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"ok": "yes"}

    port = int(sys.argv[1])
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, log_level="info", lifespan="off"))
    thread = threading.Thread(target=server.run)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=10).read()
    server.should_exit = True
    thread.join(30)
    """
)


def test_every_log_line_goes_to_standard_error_the_request_log_too() -> None:
    """README: the web server's lines, and the line of every request it answers, are on standard error, so
    that standard output is `dxl run`'s own (its tokens and where everything is). uvicorn writes its request
    log on standard output."""
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_ONE, str(free_port())], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert '"GET /ping HTTP/1.1" 200' in done.stderr and "Uvicorn running on" in done.stderr
