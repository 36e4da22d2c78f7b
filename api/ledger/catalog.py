"""Departments and the catalog: the departments the ledger admitted, and the resources they catalogue with
their metadata documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pydantic import ValidationError

from api import catalog
from api import models as m
from api.auth import Principal
from api.errors import ApiError
from api.ledger.core import (
    LIST_SCAN_LIMIT,
    Finish,
    LedgerCore,
    b32,
    journaled,
    status_name,
    to_hex,
)
from node.types import (
    Resource,
    ShareType,
)
from verifier.catalog import document_hash

if TYPE_CHECKING:
    pass

_SHARE_NAMES = {
    ShareType.UNCONDITIONAL: m.ShareTypeName.UNCONDITIONAL,
    ShareType.CONDITIONAL: m.ShareTypeName.CONDITIONAL,
    ShareType.NOT_SHARED: m.ShareTypeName.NOT_SHARED,
}
_SHARE_TYPES = {v: k for k, v in _SHARE_NAMES.items()}


class CatalogService(LedgerCore):
    """Departments and catalog resources: reads, and registering or updating a resource."""

    # --- departments -------------------------------------------------------------------------------------

    def department(self, department_id: int) -> m.DepartmentPublic:
        d = self._department_record(department_id)
        return m.DepartmentPublic(
            id=department_id,
            code=d.code,
            name=d.name,
            signer=d.signer,
            status=status_name(d.status),
            encryption_key=to_hex(d.encryption_key),
            key_epoch=d.key_epoch,
            contract_signer=d.contract_signer,
            custodied=self._custodied_name(d.signer) is not None,
        )

    def departments(self) -> list[m.DepartmentPublic]:
        count = int(self.client.call("departmentCount"))
        return [self.department(i) for i in range(1, count + 1)]

    # --- catalog -----------------------------------------------------------------------------------------

    def resource(self, resource_id: int) -> m.ResourcePublic:
        """One catalog entry with its stored metadata document and whether the chain vouches for it."""
        return self.documents.attach([self._resource(resource_id)])[0]

    def _resource(self, resource_id: int, *, owner_codes: dict[int, str] | None = None) -> m.ResourcePublic:
        """One catalog entry as the chain holds it. ``owner_codes`` caches owners' codes across the entries
        of one list (filled here), so a list reads each owning department once, not once per resource."""
        r = Resource.read(self.client, resource_id)
        codes = {} if owner_codes is None else owner_codes
        if r.owner not in codes:
            codes[r.owner] = self._department_record(r.owner).code
        return m.ResourcePublic(
            id=resource_id,
            owner=r.owner,
            owner_code=codes[r.owner],
            share_type=_SHARE_NAMES[r.share_type],
            sensitivity=r.sensitivity,
            metadata_hash=to_hex(r.metadata_hash),
            schema_hash=to_hex(r.schema_hash),
        )

    def resources(
        self, *, owner: int | None = None, share_type: m.ShareTypeName | None = None, text: str | None = None
    ) -> list[m.ResourcePublic]:
        """The catalog, newest first, with documents; ``text`` searches titles, descriptions, keywords and
        fields (case-insensitive)."""
        count = int(self.client.call("resourceCount"))
        codes: dict[int, str] = {}
        found = [
            self._resource(i, owner_codes=codes) for i in range(count, max(0, count - LIST_SCAN_LIMIT), -1)
        ]
        found = [
            r for r in found
            if (owner is None or r.owner == owner) and (share_type is None or r.share_type is share_type)
        ]  # fmt: skip
        listed = self.documents.attach(found)
        return listed if not text else [r for r in listed if catalog.matches(r, text)]

    def import_catalog(self, *, body: m.CatalogImport) -> m.CatalogImported:
        """Stores the documents of an exported catalog, each only if it hashes to its resource's metadata hash
        on this chain; one bad entry refuses the whole import (nothing stored).

        Raises:
            ApiError: VALIDATION_ERROR for a malformed document, CATALOG_DOCUMENT_MISMATCH when one does not
            hash to its resource's chain value, RESOURCE_NOT_FOUND for an unknown id.
        """
        documents = []
        for index, entry in enumerate(catalog.entries_of(body)):
            try:
                document = m.CatalogDocument.model_validate(entry.metadata or {}).as_json()
            except ValidationError as exc:
                raise ApiError(
                    "VALIDATION_ERROR", f"resources[{index}].metadata: {exc.errors()[0]['msg']}",
                    field=f"resources.{index}.metadata",
                ) from None  # fmt: skip
            on_chain = self._resource(entry.id).metadata_hash.lower()
            digest = to_hex(document_hash(document))
            if digest != on_chain:
                raise ApiError(
                    "CATALOG_DOCUMENT_MISMATCH",
                    f"resources[{index}]: the document hashes to {digest}, resource {entry.id}: {on_chain}",
                    field=f"resources.{index}.metadata", resource_id=entry.id,
                )  # fmt: skip
            documents.append(document)
        for document in documents:
            self.documents.put(document)
        return m.CatalogImported(imported=len(documents))

    @journaled
    def register_resource(
        self, *, principal: Principal, body: m.ResourceCreate
    ) -> m.Written[m.ResourcePublic]:
        me = self.department_id_of(principal)
        if body.metadata is not None:
            self.documents.put(body.metadata.as_json())
        args = (b32(body.chain_metadata_hash), b32(body.schema_hash), int(_SHARE_TYPES[body.share_type]),
                body.sensitivity)  # fmt: skip
        finish = Finish("resource", event="ResourceRegistered", arg="resourceId")
        return cast(
            m.Written[m.ResourcePublic],
            self._complete(self.department_account(me), "registerResource", args, finish, principal),
        )

    @journaled
    def update_resource(
        self, *, principal: Principal, resource_id: int, body: m.ResourceUpdate
    ) -> m.Written[m.ResourcePublic]:
        current = self._resource(resource_id)
        me = self.department_id_of(principal)
        if current.owner != me:
            raise ApiError(
                "NOT_RESOURCE_OWNER", f"resource {resource_id} belongs to department {current.owner}"
            )
        if body.metadata is not None:
            self.documents.put(body.metadata.as_json())
        args = (resource_id, b32(body.chain_metadata_hash), b32(body.schema_hash),
                int(_SHARE_TYPES[body.share_type]), body.sensitivity)  # fmt: skip
        return cast(
            m.Written[m.ResourcePublic],
            self._complete(
                self.department_account(me),
                "updateResource",
                args,
                Finish("resource", resource_id),
                principal,
            ),
        )
