"""Demand lists, mutual evaluation and sampling inspection over HTTP: the service side of the
``SharingPractice`` contract.

Texts (a demand's document, an answer's note, an evaluation's comment) are stored by the service like catalog
documents — under the SHA-256 of their canonical JSON (:mod:`verifier.catalog`), which is what the chain
holds — and every read re-hashes them: ``verified`` is true only while the stored text is the chain's.
Writes are signed with the department's custodied key and go through the ledger service's journal (one nonce
counter per key for the ledger and this contract alike).

One module per area, each importing only the ones below it:

* :mod:`api.practice.service`: :class:`PracticeService`, the areas composed for one ledger service, and the
  one place that turns a mined practice transaction into the response its route answers;
* :mod:`api.practice.drawer`: :class:`InspectionDrawer`, the thread that draws every open inspection in time;
* :mod:`api.practice.demands`: demand lists, published and answered;
* :mod:`api.practice.evaluations`: mutual evaluation under an agreement;
* :mod:`api.practice.inspections`: sampling inspections, opened, drawn, presented to and recorded;
* :mod:`api.practice.core`: the contract's client and reader, its writes signed and journaled, and the state
  the inspections of every request share; it knows no area;
* :mod:`api.practice.texts`: the texts the chain's hashes name, stored with the catalog's documents.
"""

from api.practice.drawer import InspectionDrawer
from api.practice.inspections import InspectionService, PresentationJudge
from api.practice.service import PracticeService

__all__ = ["InspectionDrawer", "InspectionService", "PracticeService", "PresentationJudge"]
