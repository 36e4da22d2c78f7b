"""``make reliability``: attack a running ``dxl run`` with load and faults, then count every write on the
chain.

Not collected by ``make test`` (no ``test_*`` modules here); run with ``python -m tests.reliability``. One
module per concern: :mod:`.processes` (the node, the API, the database's disk), :mod:`.proxy` (JSON-RPC
between API and node), :mod:`.faults`, :mod:`.load`, :mod:`.counting` (the chain's verdict), :mod:`.fuzz`
(schemathesis), :mod:`.report`; :mod:`.run` puts them together.
"""
