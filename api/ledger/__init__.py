"""The API's view of the ledger: :class:`LedgerService`, everything the routes do on the chain.

One module per area of the routes, each building on the shared chain-access core:

* :mod:`api.ledger.core`: the journaled sender and the journal's gate on a write's reads (``bound``), key
  custody, principals and party checks, and the raw reads of typed records; it knows no area;
* :mod:`api.ledger.catalog`: departments and catalog resources;
* :mod:`api.ledger.exchanges`: access requests, the signing of terms, agreements;
* :mod:`api.ledger.deliveries`: grants and deliveries;
* :mod:`api.ledger.governance`: governance proposals;
* :mod:`api.ledger.service`: :class:`LedgerService`, the areas composed, and the one place that turns a mined
  transaction into the response its route answers.
"""

from api.ledger.core import AtBlock, Custody, Finish, Listed, ListPage
from api.ledger.service import LedgerService

__all__ = ["AtBlock", "Custody", "Finish", "LedgerService", "ListPage", "Listed"]
