"""Payload commitments and proof checking, usable on its own (no chain client, no server, nothing web).

``hashing`` (algorithms, domain-separated hashes), ``tree`` (RFC 6962 tree, inclusion proofs), ``leaves`` (how
payloads are cut into leaves), ``commitment`` (streaming commit), ``manifest`` (signed delivery manifest),
``verify`` (verdicts), ``onchain`` (the same verdicts against the ledger), with ``eth`` (Keccak, EIP-55,
EIP-191 signatures), ``abi`` and ``rpc`` (plain JSON-RPC) as the little of Ethereum they need. The command
line over it is :mod:`dxl.payload`.
"""
