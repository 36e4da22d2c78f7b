"""The audit trail: an index of the ledger's events, history and provenance queries, department scorecards,
and audit reports that anyone can re-check against a node without this service.

Module map: :mod:`.events` (pure ABI decoding and lineage), :mod:`.rpc` (bare JSON-RPC), :mod:`.verify`
(report re-check; no database), :mod:`.models`/:mod:`.store` (tables, migrations), :mod:`.indexer`,
:mod:`.check`, :mod:`.queries`, :mod:`.practice_index` (the demand lists and inspections), :mod:`.scorecard`,
:mod:`.scorecard_pdf` (a scorecard as a PDF file), :mod:`.reports`, :mod:`.bench`.
"""
