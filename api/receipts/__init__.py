"""Receipts at volume: accepted in bulk, journaled with group commit, anchored in Merkle batches, off the hot
path.

A receipt is a delivery that does not get a transaction of its own. ``POST /receipts`` checks each receipt as
``POST /deliveries`` checks a delivery — the caller is the grant's provider, the grant is usable, both
departments are active, the id is unused — against grant state cached for
:data:`~api.receipts.grants.GRANT_CACHE_TTL_S`, not one ``eth_call`` per receipt; then the
:class:`~api.receipts.journal.ReceiptJournal` writes it durably (one SQLite/PostgreSQL transaction for every
request that arrived meanwhile: group commit) and the request is answered ``202``.

One module per part, each importing only the ones below it:

* :mod:`api.receipts.service`: :class:`ReceiptService`, the parts composed for one API process, and the
  consumer's side (a batch acknowledged, a receipt disputed);
* :mod:`api.receipts.anchorer`: batches closed by size or age, anchored, and followed to the chain;
* :mod:`api.receipts.lookups`: receipts by id with their status and inclusion proof (independent of the
  anchorer, which hands it each batch's tree through the service);
* :mod:`api.receipts.rows`: the journal's rows decoded, each field held to what the service writes;
* :mod:`api.receipts.journal`: the journal's tables, a batch's slot, and the journal's single writer;
* :mod:`api.receipts.grants`: the grant state a receipt is checked against, cached;
* :mod:`api.receipts.input`: the body of ``POST /receipts`` checked field by field.
"""

from api.receipts.service import ReceiptService

__all__ = ["ReceiptService"]
