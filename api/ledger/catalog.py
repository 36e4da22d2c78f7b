"""Departments and the catalog: the departments the ledger admitted, and the resources they catalogue with
their metadata documents."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, cast

from pydantic import ValidationError

from api import catalog
from api import models as m
from api.auth import Principal
from api.errors import ApiError
from api.ledger.core import (
    Finish,
    LedgerCore,
    Listed,
    ListPage,
    b32,
    journaled,
    status_name,
    to_hex,
)
from node.audit import queries as audit_queries
from node.audit.errors import InvalidQueryError
from node.types import (
    Department,
    Resource,
    ShareType,
)
from verifier.catalog import document_hash

if TYPE_CHECKING:
    from node.audit.service import AuditContext

_SHARE_NAMES = {
    ShareType.UNCONDITIONAL: m.ShareTypeName.UNCONDITIONAL,
    ShareType.CONDITIONAL: m.ShareTypeName.CONDITIONAL,
    ShareType.NOT_SHARED: m.ShareTypeName.NOT_SHARED,
}
_SHARE_TYPES = {v: k for k, v in _SHARE_NAMES.items()}


class CatalogService(LedgerCore):
    """Departments and catalog resources: reads, and registering or updating a resource."""

    #: Entries per page of an export: read, checked and written before the next is read.
    EXPORT_PAGE = audit_queries.MAX_LIMIT

    # --- departments -------------------------------------------------------------------------------------

    def department(self, department_id: int) -> m.DepartmentPublic:
        return self._department_public(self._department_record(department_id))

    def _department_public(self, d: Department, held: Mapping[str, str] | None = None) -> m.DepartmentPublic:
        return m.DepartmentPublic(
            id=d.id,
            code=d.code,
            name=d.name,
            signer=d.signer,
            status=status_name(d.status),
            encryption_key=to_hex(d.encryption_key),
            key_epoch=d.key_epoch,
            contract_signer=d.contract_signer,
            custodied=self._custodied_name(d.signer, held) is not None,
        )

    def departments(self, *, index: AuditContext, page: ListPage) -> Listed[m.DepartmentPublic]:
        """The admitted departments in the order of admission, one page read from the audit index
        (:func:`node.audit.queries.department_page`: admissions, suspensions, reinstatements and re-keyings
        folded as the ledger's view answers them, nothing read from the chain per department) once the index
        is healed and brought up to the chain's head (:meth:`~node.audit.service.AuditContext.caught_up`), so
        a department admitted a moment before is listed.

        Raises:
            ApiError: VALIDATION_ERROR for a malformed cursor, or one naming no admitted department.
            NodeError: the node fails while the index catches up.
        """
        block, _ = index.caught_up()
        try:
            found = audit_queries.department_page(index.engine, cursor=page.cursor, limit=page.limit)
        except InvalidQueryError as exc:
            raise ApiError("VALIDATION_ERROR", exc.message, field=exc.field) from None
        held = self.custody.names_by_address()  # one keystore scan for the page, not one per department
        return Listed([self._department_public(d, held) for d in found.items], found.next_cursor, block)

    # --- catalog -----------------------------------------------------------------------------------------

    def resource(self, resource_id: int) -> m.ResourcePublic:
        """One catalog entry with its stored metadata document and whether the chain vouches for it."""
        return self.documents.attach([self._resource(resource_id)])[0]

    def _resource(self, resource_id: int) -> m.ResourcePublic:
        """One catalog entry as the chain holds it."""
        r = Resource.read(self.client, resource_id)
        return m.ResourcePublic(
            id=resource_id,
            owner=r.owner,
            owner_code=self._department_record(r.owner).code,
            share_type=_SHARE_NAMES[r.share_type],
            sensitivity=r.sensitivity,
            metadata_hash=to_hex(r.metadata_hash),
            schema_hash=to_hex(r.schema_hash),
        )

    def resources(
        self,
        *,
        index: AuditContext,
        page: ListPage,
        owner: int | None = None,
        share_type: m.ShareTypeName | None = None,
        text: str | None = None,
    ) -> Listed[m.ResourcePublic]:
        """The catalog, newest first, one page read from the audit index, each entry as its latest
        registration or update indexed left it, with its stored document and whether that document hashes to
        the entry's metadata hash; ``text`` searches titles, descriptions, keywords and fields
        (case-insensitive). Anyone authenticated reads the whole catalog. The filters and the page are
        answered in SQL (:class:`api.catalog.CatalogIndex`): only the page's documents are read and checked.

        Raises:
            ApiError: VALIDATION_ERROR for a malformed cursor; INDEX_BEHIND.
        """
        indexed = self._indexed_up_to(index, page.min_block)
        self.catalog_index.sync(index.engine)
        query = catalog.CatalogQuery(
            owner=owner, share_type=None if share_type is None else _SHARE_TYPES[share_type], text=text
        )
        try:
            found = self.catalog_index.page(index.engine, query, cursor=page.cursor, limit=page.limit)
        except InvalidQueryError as exc:
            raise ApiError("VALIDATION_ERROR", exc.message, field=exc.field) from None
        return Listed(self._resources_public(index, found.entries), found.next_cursor, indexed)

    def catalog(
        self, *, index: AuditContext, min_block: int | None = None
    ) -> Iterator[list[m.ResourcePublic]]:
        """The whole catalog as the audit index holds it, newest first: the pages of :meth:`resources`, each
        read (and its documents checked) only when the one before has been consumed, so an export holds one
        page in memory, not the catalog. The first page is read before this returns: INDEX_BEHIND and a bad
        ``min_block`` are answered as errors, never in the middle of a streamed answer.

        Raises:
            ApiError: INDEX_BEHIND.
        """
        page = ListPage(limit=self.EXPORT_PAGE, min_block=min_block)
        return self._catalog_pages(index, self.resources(index=index, page=page), page.limit)

    def _catalog_pages(
        self, index: AuditContext, listed: Listed[m.ResourcePublic], limit: int
    ) -> Iterator[list[m.ResourcePublic]]:
        yield listed.items
        while listed.next_cursor is not None:
            # Pages after the first read the index as it is: the first brought it up to min_block already.
            listed = self.resources(index=index, page=ListPage(limit=limit, cursor=listed.next_cursor))
            yield listed.items

    def _resources_public(self, index: AuditContext, rows: list[Resource]) -> list[m.ResourcePublic]:
        """Catalog entries read from the index with their owners' codes (admissions indexed before them) and
        their stored documents."""
        codes = {i: d["code"] for i, d in audit_queries.departments(index.engine).items()} if rows else {}
        return self.documents.attach(
            m.ResourcePublic(
                id=r.id,
                owner=r.owner,
                # An owner is admitted before it registers anything, so the index holds its code; the chain
                # answers only for an index that does not (a database restored from elsewhere).
                owner_code=codes[r.owner] if r.owner in codes else self._department_record(r.owner).code,
                share_type=_SHARE_NAMES[r.share_type],
                sensitivity=r.sensitivity,
                metadata_hash=to_hex(r.metadata_hash),
                schema_hash=to_hex(r.schema_hash),
            )
            for r in rows
        )

    def import_catalog(self, *, body: m.CatalogImport) -> m.CatalogImported:
        """Stores the documents of an exported catalog, each only if it hashes to its resource's metadata hash
        on this chain and is held to the rules ``POST /resources`` holds a document to
        (:class:`m.CatalogDocument`, :meth:`m.CatalogDocument.missing_for`); one bad entry refuses the whole
        import (nothing stored).

        Raises:
            ApiError: VALIDATION_ERROR for a malformed document, CATALOG_DOCUMENT_MISMATCH when one does not
            hash to its resource's chain value, RESOURCE_NOT_FOUND for an unknown id.
        """
        documents = []
        # An export names a resource once; an import may name it again.
        on_chain: dict[int, m.ResourcePublic] = {}
        for item in catalog.entries_of(body):
            entry = item.entry
            try:
                # The model POST /resources validates a document with, rules and all: a resource registered by
                # its bare hash would otherwise be given, by import, a title POST /resources refuses.
                held = m.CatalogDocument.model_validate(entry.metadata or {})
            except ValidationError as exc:
                raise ApiError(
                    "VALIDATION_ERROR", catalog.problem(exc, item.document), field=item.field
                ) from None
            document = held.as_json()
            if entry.id not in on_chain:
                on_chain[entry.id] = self._resource(entry.id)
            resource = on_chain[entry.id]
            digest = to_hex(document_hash(document))
            if digest != resource.metadata_hash.lower():
                raise ApiError(
                    "CATALOG_DOCUMENT_MISMATCH",
                    f"{item.where}: the document hashes to {digest}, resource {entry.id}: "
                    f"{resource.metadata_hash.lower()}",
                    field=item.field, resource_id=entry.id,
                )  # fmt: skip
            if (missing := held.missing_for(resource.share_type)) is not None:
                raise ApiError(
                    "VALIDATION_ERROR", f"{item.document}.{missing}: {m.CONDITIONAL_NEEDS_ACCESS_RIGHTS}",
                    field=item.field, resource_id=entry.id,
                )  # fmt: skip
            documents.append(document)
        self.documents.put_many(documents)
        return m.CatalogImported(imported=len(documents))

    @journaled
    def register_resource(
        self, *, principal: Principal, body: m.ResourceCreate
    ) -> m.Written[m.ResourcePublic]:
        me = self.department_id_of(principal)
        args = (b32(body.chain_metadata_hash), b32(body.schema_hash), int(_SHARE_TYPES[body.share_type]),
                body.sensitivity)  # fmt: skip
        finish = Finish("resource", event="ResourceRegistered", arg="resourceId")
        documents = [] if body.metadata is None else [body.metadata.as_json()]
        return cast(
            m.Written[m.ResourcePublic],
            self._complete(
                self.department_account(me), "registerResource", args, finish, principal, documents
            ),
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
                [] if body.metadata is None else [body.metadata.as_json()],
            ),
        )
