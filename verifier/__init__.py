"""Payload commitments and proof checking, usable on its own (no chain, no server, nothing web-related).

``hashing`` (algorithms, domain-separated hashes), ``tree`` (RFC 6962 tree, inclusion proofs), ``leaves`` (how
payloads are cut into leaves), ``commitment`` (streaming commit), ``manifest`` (signed delivery manifest),
``verify`` (verdicts), ``cli`` (``dxl commit/verify/reconcile``), ``bench`` (throughput benchmark).
"""
