"""The API's view of the ledger: :class:`LedgerService`, everything the routes do on the chain
(:mod:`api.ledger.core`, to be split along the routes' areas)."""

from api.ledger.core import Custody, Finish, LedgerService

__all__ = ["Custody", "Finish", "LedgerService"]
