"""Request and response bodies (pydantic), layered by role: ``XCreate`` comes in, ``XPublic`` goes out.

Hex values are validated here, before anything is signed: a bytes32 is ``0x`` + 64 hex digits, a signature
``0x`` + 130. Integers carry the bounds of the Solidity types they become, so an out-of-range value is a 422
naming the field rather than an encoding error at the chain client.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue

from api.errors import FieldRuleError
from node.types import MIN_PRESENT_WITHIN_S, PRESENTATION_NOTICE_S
from verifier.catalog import document_hash
from verifier.codes import FindingCode, VerdictStatus
from verifier.departments import DEPARTMENT_CODE_PATTERN

#: ``0x`` + 64 hex digits: a bytes32 in a body, a path or a query.
BYTES32_PATTERN = r"^0x[0-9a-fA-F]{64}$"
Bytes32Hex = Annotated[str, Field(pattern=BYTES32_PATTERN, examples=["0x" + "ab" * 32])]
SignatureHex = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65-byte r||s||v signature")]
AddressHex = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
# Strict: `true`, "4" or 4.0 for an integer is a 422 naming the field, not a write with the value pydantic
# would have guessed (FastAPI validates the parsed JSON in Python mode, where lax ints accept all three).
Uint8 = Annotated[int, Field(ge=0, le=2**8 - 1, strict=True)]
Uint16 = Annotated[int, Field(ge=0, le=2**16 - 1, strict=True)]
Uint64 = Annotated[int, Field(ge=0, le=2**64 - 1, strict=True)]
#: The largest record id (uint64 on chain).
MAX_ID64 = 2**64 - 1
#: A record id: requests, agreements, grants and resources are numbered from 1 (uint64 on chain).
Id64 = Annotated[int, Field(ge=1, le=MAX_ID64, strict=True)]
#: The largest byte size or record count a delivery may state, recorded alone (``POST /deliveries``) or as a
#: receipt (``POST /receipts``): one rule for both. The ledger and a receipt's leaf hold uint64, but a receipt
#: waits for its batch in the API database, whose integers are signed 64-bit (SQLite INTEGER, PostgreSQL
#: BIGINT). 2**63 - 1 bytes is 8 EiB.
MAX_DELIVERY_COUNT = 2**63 - 1
#: A delivery's byte size or record count (:data:`MAX_DELIVERY_COUNT`).
DeliveryCount = Annotated[int, Field(ge=0, le=MAX_DELIVERY_COUNT, strict=True)]
#: A department id (uint32 on chain), from 1.
Id32 = Annotated[int, Field(ge=1, le=2**32 - 1, strict=True)]
DepartmentCode = Annotated[str, Field(pattern=DEPARTMENT_CODE_PATTERN)]

#: Format characters a name in Arabic, Persian or Indic scripts, or an emoji, needs.
_JOINERS = frozenset("\u200c\u200d")
#: The bidirectional embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI): text
#: after one shows in an order other than the one it is stored, hashed and signed in ("Trojan Source",
#: CVE-2021-42574). The marks (LRM, RLM, ALM) change no order and are taken.
_BIDI_CONTROLS = frozenset({"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"})


#: Unicode categories of characters that show nothing: white space and separators, controls, and format
#: characters (a zero-width space, a joiner, a soft hyphen, a word joiner).
_SHOWS_NOTHING = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def _shows_something(value: str) -> bool:
    return any(unicodedata.category(c) not in _SHOWS_NOTHING for c in value)


def _no_bidi_controls(value: str) -> str:
    """Text that says something and shows in the order it is stored: refuses white space alone and a
    bidirectional embedding, override or isolate."""
    # A purpose, a legal basis or a note of spaces and line breaks states none: refused as an empty one is,
    # and an optional text is left out rather than sent blank. So does one of characters that show nothing
    # (zero-width spaces), which a reader sees as blank.
    if not _shows_something(value):
        raise ValueError("the text is empty or white space alone (or characters that show nothing)")
    bad = next((c for c in value if unicodedata.bidirectional(c) in _BIDI_CONTROLS), None)
    if bad is not None:
        raise ValueError(
            f"U+{ord(bad):04X} is a bidirectional control: the text would show in another order than it is"
        )
    return value


def _one_plain_line(value: str) -> str:
    """One line of visible text, as a name or a title is read in a list: refuses control and format
    characters but the joiners (:data:`_JOINERS`), line and paragraph separators, and spaces at either end."""
    # Kept on chain for good (a name) or by its hash (a title), and read by people before they approve or
    # request: a control character (a terminal's escape sequence) or a bidirectional override ("PSB" written
    # right to left shows as another name) would make it read otherwise than it is.
    # The line and paragraph separators (Zl, Zp) break a line as a newline does.
    bad = next(
        (c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in _JOINERS), None
    )
    if bad is not None:
        raise ValueError(
            f"one line of visible text: U+{ord(bad):04X} is a control, format or line separator character"
        )
    # Spaces around a name are not seen: "PSB " read as "PSB", and a name of spaces alone as none.
    if value != value.strip():
        raise ValueError("one line of visible text: it begins or ends with a space")
    # The joiners alone are taken above but show nothing: a name or title of them reads as none.
    if not _shows_something(value):
        raise ValueError("one line of visible text: it shows nothing")
    return value


#: A department's name, a catalog entry's or a demand's title: one line of visible text
#: (:func:`_one_plain_line`).
PlainLine = AfterValidator(_one_plain_line)


class _SaysSomething(AfterValidator):
    """An after-validator whose text must hold a character other than white space, as its JSON schema says
    too (``pattern``), so that the OpenAPI document does not offer blank text the check refuses. The pattern
    documents, the check decides: ``\\S`` reads white space as JSON Schema's regular expressions do, which
    differ from :meth:`str.isspace` on a few control characters (U+001C-U+001F, U+0085)."""

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "pattern": r"\S"}


#: Text that may run over lines but is not white space alone and shows in the order it is stored
#: (:func:`_no_bidi_controls`).
InOrderText = _SaysSomething(_no_bidi_controls)


def field_key(name: str) -> str:
    """A field's name as names are compared (a document keeps it as written, and is hashed so): composed
    (NFC), so "é" as one code point and as "e" with a combining accent, which read the same, are one name."""
    return unicodedata.normalize("NFC", name)


def _each_field_once(names: list[str], *, field: str | None = None) -> None:
    """Refuses a list of fields naming one twice (compared by :func:`field_key`): which of the two a reader
    takes (a datatype, a data list's entry) would be its choice, not the document's. ``field``: the list's
    name in a model that checks it in a model validator (pydantic places that error on the model)."""
    seen: set[str] = set()
    for name in names:
        composed = field_key(name)
        if composed in seen:
            message = f"the document names the field {name!r} twice"
            raise ValueError(message) if field is None else FieldRuleError(field, message)
        seen.add(composed)


def _named_once(names: list[str]) -> list[str]:
    _each_field_once(names)
    return names


#: A list of field names, each named once (:func:`_each_field_once`).
_NamedOnce = AfterValidator(_named_once)


#: The component of the OpenAPI document that holds the delivery manifest's JSON Schema, the verifier's own
#: (``verifier/manifest.schema.json``, added by :mod:`api.openapi`).
MANIFEST_COMPONENT = "Manifest"
#: A delivery manifest in a body: read by the verifier (``verifier.manifest.parse_manifest``), which names the
#: first field it refuses; documented by the verifier's JSON Schema, so that a client or a fuzzer knows its
#: fields (the document said any object). The schema leaves to the verifier what no JSON Schema says: the
#: fields' agreement (counts, chunking, leaf hashes and root), a real calendar date, an EIP-55 checksum.
# Marked here and referenced by api.openapi: pydantic resolves every $ref among the models it knows, and the
# component is not one of them.
MANIFEST_MARK = "x-dxl-manifest"
ManifestDocument = Annotated[dict[str, Any], WithJsonSchema({"type": "object", MANIFEST_MARK: True})]

#: A department's name: one line of visible text, in any script.
DepartmentName = Annotated[str, Field(min_length=1, max_length=200), PlainLine]

T = TypeVar("T")

# Examples of the document that name records of the demo ledger (``node/provision.py``, what ``dxl run``
# provisions), so that a client trying the demo, or the fuzz run on its deployment, sends a body the ledger
# can take: the resource catalogued second (HRSS's, conditional), which any other department may request; a
# department a demand may be addressed to; a period that holds the chain's clock for decades.
DEMO_REQUESTED_RESOURCE = 2
DEMO_ADDRESSEE = "HRSS"
EXAMPLE_START = 1_767_225_600  # 2026-01-01T00:00:00Z
EXAMPLE_END = 4_102_444_800  # 2100-01-01T00:00:00Z


class Strict(BaseModel):
    """A request body: unknown fields are refused, and so are coerced integers (every integer type here is
    strict)."""

    model_config = ConfigDict(extra="forbid")


# Which fields a body must give together or not at all, as its model's validator checks them, said in its
# JSON schema too (``json_schema_extra``): a client or a fuzzer reading the OpenAPI document then knows which
# bodies the route takes. A field "absent" is left out or null, as the model reads it (its default is None).


def _given(*names: str) -> dict[str, Any]:
    """The JSON schema of a body that gives each of ``names`` (not null)."""
    return {"required": list(names), "properties": {name: {"not": {"type": "null"}} for name in names}}


def _absent(*names: str) -> dict[str, Any]:
    """The JSON schema of a body that gives none of ``names`` (each left out or null)."""
    return {"properties": {name: {"type": "null"} for name in names}}


def _both(*schemas: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a body that is each of ``schemas`` (made by :func:`_given` or :func:`_absent`)."""
    return {
        "required": [name for schema in schemas for name in schema.get("required", ())],
        "properties": {name: rule for schema in schemas for name, rule in schema["properties"].items()},
    }


class ShareTypeName(StrEnum):
    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NOT_SHARED = "not_shared"


class HashAlgorithmName(StrEnum):
    SHA256 = "sha256"
    SM3 = "sm3"


# --- common -------------------------------------------------------------------------------------------------


class TransactionPublic(BaseModel):
    hash: str
    block_number: int


class Written(BaseModel, Generic[T]):
    """What every write returns: the transaction that recorded it and the record as it now stands."""

    transaction: TransactionPublic
    record: T


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorPublic(BaseModel):
    error: ErrorDetail


class StoredText(BaseModel):
    """A text the chain holds the hash of, as the service stores it."""

    hash: str
    #: None when the service has no text for this hash.
    document: dict[str, Any] | None = None
    #: Whether the stored text hashes to the chain's value.
    verified: bool = False


class PrincipalPublic(BaseModel):
    principal: str
    role: str
    department: str | None = None
    department_id: int | None = None
    governor: int | None = None
    token_name: str


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    node_reachable: bool
    chain_id: int | None = None
    latest_block: int | None = None
    contracts: dict[str, str] = {}
    detail: str | None = None


# --- departments and governance -----------------------------------------------------------------------------


class DepartmentPublic(BaseModel):
    id: int
    code: str
    name: str
    signer: str
    status: str
    encryption_key: str
    key_epoch: int = Field(description="changes of signer so far; signed terms name it")
    contract_signer: bool = Field(
        description="admitted with an ERC-1271 contract signer, whose isValidSignature decides what it signed"
    )
    custodied: bool = Field(description="whether this service holds the department's signing key")


class AdmitDepartment(Strict):
    action: Literal["admit_department"]
    code: DepartmentCode
    name: DepartmentName
    signer: AddressHex
    encryption_key: Bytes32Hex
    contract_signer: bool = Field(
        False,
        description="accept ERC-1271 signatures of a contract signer: that contract alone then decides what "
        "the department signed; leave false for a key",
    )


class DepartmentAction(Strict):
    action: Literal["suspend_department", "reinstate_department"]
    department_id: Id32


def _not_zero_address(value: str) -> str:
    # The contract gives address zero no role and it holds none to take away: a proposal naming it could
    # only be refused by the approval that would carry it out.
    if int(value, 16) == 0:
        raise ValueError("the zero address holds no role and is given none")
    return value


class AuditorAction(Strict):
    action: Literal["grant_auditor", "revoke_auditor"]
    account: Annotated[AddressHex, AfterValidator(_not_zero_address)]


class AgreementAction(Strict):
    action: Literal["suspend_agreement", "revoke_agreement", "reinstate_agreement"]
    agreement_id: Id64


ProposalCreate = Annotated[
    AdmitDepartment | DepartmentAction | AuditorAction | AgreementAction, Field(discriminator="action")
]


class ProposalStatus(StrEnum):
    OPEN = "open"
    EXECUTED = "executed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class ProposalParameters(BaseModel):
    """The arguments a proposal carries, decoded from its on-chain ``data``; only the action's own are set."""

    department_id: int | None = None
    code: str | None = None
    name: str | None = None
    signer: str | None = None
    encryption_key: str | None = None
    contract_signer: bool | None = None
    account: str | None = None
    threshold: int | None = None
    agreement_id: int | None = None


class ProposalPublic(BaseModel):
    id: int
    action: str
    proposer: str
    approvals: int
    threshold: int
    executed: bool
    expires_at: int
    status: ProposalStatus = Field(
        description="open (awaiting approvals), executed, expired (unexecuted) or cancelled (by its proposer)"
    )
    data: str = Field(description="the ABI-encoded arguments exactly as proposed")
    parameters: ProposalParameters | None = Field(
        description="the arguments decoded from `data`; null if they do not decode for the action"
    )
    department: DepartmentPublic | None = Field(
        default=None, description="the department a department action concerns, as it stands now"
    )
    agreement: AgreementPublic | None = Field(
        default=None, description="the agreement an agreement action concerns, as it stands now"
    )
    approved_by_you: bool | None = Field(
        default=None,
        description="whether the calling governor's approval stands on it (approving again is refused, 409 "
        "ALREADY_APPROVED); null for other roles and for a governor whose key this service does not hold",
    )


# --- catalog ------------------------------------------------------------------------------------------------


Text = Annotated[str, Field(min_length=1, max_length=2000)]


class Dcat(BaseModel):
    """A part of a catalog document: JSON keys are the vocabulary's prefixed names (``dct:title``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class CatalogColumn(Dcat):
    """One field of the resource (CSV on the Web column terms)."""

    name: Annotated[str, Field(min_length=1, max_length=200, alias="csvw:name")]
    datatype: Annotated[str, Field(min_length=1, max_length=100, alias="csvw:datatype")]
    description: Annotated[str | None, Field(max_length=2000, alias="dct:description")] = None


class CatalogContact(Dcat):
    """The responsible contact (vCard terms, as DCAT's ``dcat:contactPoint`` uses)."""

    name: Annotated[str, Field(min_length=1, max_length=200, alias="vcard:fn")]
    email: Annotated[
        str | None, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=200, alias="vcard:hasEmail")
    ] = None
    telephone: Annotated[str | None, Field(min_length=1, max_length=50, alias="vcard:hasTelephone")] = None


class CatalogDocument(Dcat):
    """A catalog entry's metadata document (DCAT / DCAT-AP terms). Its canonical JSON is hashed into the
    chain's metadata hash (:mod:`verifier.catalog`)."""

    title: Annotated[str, Field(min_length=1, max_length=500, alias="dct:title"), PlainLine]
    description: Annotated[str, Field(min_length=1, max_length=10_000, alias="dct:description"), InOrderText]
    keywords: Annotated[list[Text] | None, Field(max_length=50, alias="dcat:keyword")] = None
    columns: Annotated[list[CatalogColumn], Field(min_length=1, max_length=500, alias="csvw:column")]
    media_type: Annotated[
        str, Field(pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$", max_length=100, alias="dcat:mediaType")
    ]
    periodicity: Annotated[Text, Field(alias="dct:accrualPeriodicity", examples=["daily", "monthly"])]
    access_rights: Annotated[
        Text | None,
        Field(alias="dct:accessRights", description="sharing conditions: what a requester must provide"),
    ] = None
    contact: Annotated[CatalogContact, Field(alias="dcat:contactPoint")]
    legal_basis: Annotated[Text, Field(alias="dcatap:applicableLegislation")]
    conforms_to: Annotated[Text | None, Field(alias="dct:conformsTo")] = None

    @model_validator(mode="after")
    def _fields_once(self) -> CatalogDocument:
        _each_field_once([c.name for c in self.columns], field="csvw:column")
        return self

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)

    def missing_for(self, share_type: ShareTypeName) -> str | None:
        """The field this document lacks for a resource shared as ``share_type`` (its alias), or None: the
        rule of every document stored, whether registered with its resource or imported for it."""
        if share_type is ShareTypeName.CONDITIONAL and self.access_rights is None:
            return "dct:accessRights"
        return None


#: Why a document is refused by :meth:`CatalogDocument.missing_for`.
CONDITIONAL_NEEDS_ACCESS_RIGHTS = (
    "a conditional resource's metadata needs dct:accessRights (the sharing conditions)"
)


class ResourceCreate(Strict):
    """``metadata`` (the document, stored by the service and hashed into ``metadata_hash``) or a bare
    ``metadata_hash``; when both are given they must agree."""

    # What the schema cannot say: that metadata_hash, when both are given, is the document's hash.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {"anyOf": [_given("metadata"), _given("metadata_hash")]},
                {
                    "anyOf": [
                        {"properties": {"share_type": {"not": {"const": "conditional"}}}},
                        {
                            "properties": {
                                "metadata": {"anyOf": [{"type": "null"}, _given("dct:accessRights")]}
                            }
                        },
                    ]
                },
            ]
        }
    )

    metadata: CatalogDocument | None = None
    metadata_hash: Bytes32Hex | None = None
    schema_hash: Bytes32Hex
    share_type: ShareTypeName
    sensitivity: Uint8 = 0

    @model_validator(mode="after")
    def _document_agrees(self) -> ResourceCreate:
        if self.metadata is None:
            if self.metadata_hash is None:
                raise FieldRuleError("metadata", "give metadata (the catalog document) or metadata_hash")
            return self
        if (missing := self.metadata.missing_for(self.share_type)) is not None:
            raise FieldRuleError(f"metadata.{missing}", CONDITIONAL_NEEDS_ACCESS_RIGHTS)
        digest = "0x" + document_hash(self.metadata.as_json()).hex()
        if self.metadata_hash is not None and self.metadata_hash.lower() != digest:
            raise FieldRuleError("metadata_hash", f"metadata_hash is not the hash of metadata ({digest})")
        self.metadata_hash = digest
        return self

    @property
    def chain_metadata_hash(self) -> str:
        assert self.metadata_hash is not None  # set by the validator
        return self.metadata_hash


class ResourceUpdate(ResourceCreate):
    """``PUT /resources/{id}``: the body of ``POST /resources``, ``sensitivity`` required. An update replaces
    what the ledger holds of the entry, and one that did not state it set the sensitivity to 0, the least,
    whatever it was."""

    sensitivity: Uint8


class ResourcePublic(BaseModel):
    id: int
    owner: int
    owner_code: str
    share_type: ShareTypeName
    sensitivity: int
    metadata_hash: str
    schema_hash: str
    #: The stored document (None when the service has none for this hash).
    metadata: dict[str, Any] | None = None
    #: Whether the stored document hashes to the chain's ``metadata_hash``.
    verified: bool = False


class CatalogEntry(Strict):
    """One entry of an imported catalog: the resource id and its document (other exported columns ignored)."""

    model_config = ConfigDict(extra="ignore")

    #: Strict, as every id of a body: lax, ``true`` was resource 1 and ``"7"`` or ``7.0`` resource 7.
    id: Id64
    #: None (an entry exported without a document) is skipped.
    metadata: dict[str, Any] | None = None


#: Entries of one import, in either form (a CSV's data rows, with or without a document, count alike):
#: each is validated, hashed and looked up on the chain before anything is stored.
CATALOG_IMPORT_MAX_ENTRIES = 2000


class CatalogImport(Strict):
    """A catalog export, as JSON entries (``resources``) or as the CSV text of ``GET /resources/export``."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [_both(_given("resources"), _absent("csv")), _both(_given("csv"), _absent("resources"))]
        }
    )

    # Bounds below the route's body limit, so an over-long list or text is a 422, not a 413.
    resources: Annotated[list[CatalogEntry] | None, Field(max_length=CATALOG_IMPORT_MAX_ENTRIES)] = None
    csv: Annotated[str | None, Field(max_length=3_000_000)] = None

    @model_validator(mode="after")
    def _one_form(self) -> CatalogImport:
        if (self.resources is None) == (self.csv is None):
            raise FieldRuleError("resources", "give either resources or csv")
        return self


class CatalogImported(BaseModel):
    imported: int


# --- requests and agreements --------------------------------------------------------------------------------


#: An ISO 8601 duration (``P1D``, ``PT4H``, ``P1Y2M``): how DCAT and ODRL write a length of time.
ISO_DURATION_PATTERN = r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$"


def _some_length(value: str) -> str:
    # The pattern alone admits "P" and "P1DT" (pydantic's regex engine has no look-ahead to refuse them).
    if value in ("P", "PT") or value.endswith("T"):
        raise ValueError("an ISO 8601 duration names at least one length, e.g. P1D or PT4H")
    return value


Duration = Annotated[
    str,
    Field(
        pattern=ISO_DURATION_PATTERN,
        max_length=50,
        examples=["P1D", "PT4H"],
        # What _some_length refuses, said in the schema, whose regular expressions need no look-ahead for it.
        json_schema_extra={"not": {"pattern": "^P$|T$"}},
    ),
    AfterValidator(_some_length),
]


class OdrlAction(StrEnum):
    """What the consumer may or may not do with the data: actions of the ODRL Common Vocabulary."""

    USE = "use"
    AGGREGATE = "aggregate"
    ANONYMIZE = "anonymize"
    ARCHIVE = "archive"
    DISPLAY = "display"
    #: Onward sharing: passing the data to anyone outside the consumer.
    DISTRIBUTE = "distribute"
    MODIFY = "modify"
    PRINT = "print"
    REPRODUCE = "reproduce"


class TermsColumn(Dcat):
    """One field of the data list, named as the resource's catalog document names it (``csvw:name``)."""

    name: Annotated[str, Field(min_length=1, max_length=200, alias="csvw:name")]


class TermsDuties(Dcat):
    """What each side undertakes, in its own words: the provider (ODRL's assigner) and the consumer (the
    assignee)."""

    provider: Annotated[str, Field(min_length=1, max_length=2000, alias="odrl:assigner"), InOrderText]
    consumer: Annotated[str, Field(min_length=1, max_length=2000, alias="odrl:assignee"), InOrderText]


class TermsDocument(Dcat):
    """The readable sharing terms of a request (DCAT, DCAT-AP, CSVW and ODRL terms). The service stores them
    with the request's purpose (``odrl:purpose``) as canonical JSON whose hash (:mod:`verifier.catalog`) is
    the request's ``terms_hash``; ``scope_hash`` is the hash of the data list alone (:meth:`scope`). Both are
    in the EIP-712 terms the departments sign, so the signatures cover this text. Every permitted action is
    limited to the purpose. Read by both before they sign: its texts show in the order they are hashed and
    signed in (:data:`InOrderText`)."""

    columns: Annotated[
        list[TermsColumn],
        Field(min_length=1, max_length=500, alias="csvw:column",
              description="the data list: the fields requested"),
    ]  # fmt: skip
    legal_basis: Annotated[Text, Field(alias="dcatap:applicableLegislation"), InOrderText]
    media_type: Annotated[
        str,
        Field(pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$", max_length=100, alias="dcat:mediaType",
              examples=["text/csv", "application/json"]),
    ]  # fmt: skip
    periodicity: Annotated[
        Duration, Field(alias="dct:accrualPeriodicity", description="how often the data is updated")
    ]
    max_delay: Annotated[
        Duration,
        Field(alias="odrl:delayPeriod", description="the longest a change may take to reach the consumer"),
    ]
    permission: Annotated[
        list[OdrlAction],
        Field(min_length=1, max_length=len(OdrlAction), alias="odrl:permission",
              description="actions the consumer may take, each for the purpose only",
              json_schema_extra={"uniqueItems": True}),
    ]  # fmt: skip
    prohibition: Annotated[
        list[OdrlAction],
        Field(max_length=len(OdrlAction), alias="odrl:prohibition",
              description="actions the consumer may not take: `distribute` forbids onward sharing",
              json_schema_extra={"uniqueItems": True}),
    ]  # fmt: skip
    retention_days: Annotated[
        int,
        Field(ge=1, le=36_500, strict=True, alias="dxl:retentionDays",
              description="days the consumer may keep the data (ODRL's duty to delete after them)"),
    ]  # fmt: skip
    duties: Annotated[TermsDuties, Field(alias="odrl:duty")]

    @model_validator(mode="after")
    def _consistent(self) -> TermsDocument:
        _each_field_once([c.name for c in self.columns], field="csvw:column")
        if len(set(self.permission)) != len(self.permission) or len(set(self.prohibition)) != len(
            self.prohibition
        ):
            raise FieldRuleError("odrl:permission", "an action is listed twice")
        both = sorted(set(self.permission) & set(self.prohibition))
        if both:
            raise FieldRuleError(
                "odrl:prohibition", f"actions both permitted and prohibited: {', '.join(both)}"
            )
        return self

    def stored(self, purpose: str) -> dict[str, Any]:
        """The document the service stores and ``terms_hash`` is the hash of: these terms and the purpose."""
        return {**self.model_dump(by_alias=True, mode="json"), "odrl:purpose": purpose}

    def scope(self) -> dict[str, Any]:
        """The data list alone, whose hash is ``scope_hash``."""
        return {"csvw:column": [c.model_dump(by_alias=True) for c in self.columns]}


class RequestCreate(Strict):
    """``terms`` (stored by the service; ``terms_hash`` and ``scope_hash`` are derived from it) or both bare
    hashes."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                _both(_given("terms"), _absent("scope_hash", "terms_hash")),
                _both(_given("scope_hash", "terms_hash"), _absent("terms")),
            ]
        }
    )

    resource_id: Annotated[Id64, Field(examples=[DEMO_REQUESTED_RESOURCE])]
    #: Hashed into the signed terms (purposeHash): shows in the order it is hashed in.
    purpose: Annotated[str, Field(min_length=1, max_length=2000), InOrderText]
    terms: TermsDocument | None = None
    scope_hash: Bytes32Hex | None = None
    terms_hash: Bytes32Hex | None = None
    valid_from: Annotated[Uint64, Field(examples=[EXAMPLE_START])]
    valid_until: Annotated[Uint64, Field(examples=[EXAMPLE_END])]

    @model_validator(mode="after")
    def _one_form(self) -> RequestCreate:
        hashes = (self.scope_hash is not None, self.terms_hash is not None)
        if self.terms is not None and any(hashes):
            raise FieldRuleError(
                "terms", "give terms or scope_hash and terms_hash, not both: the hashes are the terms'"
            )
        if self.terms is None and not all(hashes):
            raise FieldRuleError("terms", "give terms, or both scope_hash and terms_hash")
        return self


class RequestReject(Strict):
    reason_code: Annotated[int, Field(ge=1, le=2**16 - 1, strict=True)]


class RequestPublic(BaseModel):
    id: int
    resource_id: int
    consumer: int
    provider: int
    status: str
    requested_at: int
    decided_at: int
    answer_by: int = Field(
        description="requested_at plus the working days a provider has to decide "
        "(DXL_AUDIT_RESPONSE_DEADLINE_DAYS, 10 by default; Monday-Friday, UTC): the deadline the scorecard "
        "holds the provider to"
    )
    overdue: bool | None = Field(
        description="decided after answer_by, or still pending past it by the chain's clock (the latest "
        "block's time), as the scorecard's requests.overdue counts it; null for a request withdrawn before "
        "any decision, whose withdrawal time the chain's request record does not hold (the audit trail does)"
    )
    reason_code: int
    valid_from: int
    valid_until: int
    purpose_hash: str
    scope_hash: str
    terms_hash: str
    terms: StoredText | None = Field(
        default=None,
        description="the stored terms document whose hash is terms_hash, and whether it still hashes to it; "
        "null when the service has none (the request gave only hashes)",
    )


class SigningPublic(BaseModel):
    """The EIP-712 typed data both departments sign, and who has signed so far."""

    request_id: int
    digest: str
    typed_data: dict[str, Any]
    signed_by: list[Literal["provider", "consumer"]]
    agreement_id: int | None = None
    terms: StoredText | None = Field(
        default=None,
        description="the readable terms whose hash the typed data's termsHash is (see RequestPublic)",
    )


class SignatureCreate(Strict):
    signature: SignatureHex | None = Field(
        default=None,
        description="the department's own EIP-712 signature over typed_data; omit to use its custodied key",
    )


class SignatureOutcome(BaseModel):
    """After a signature: still waiting for the other party, or the concluded agreement."""

    status: Literal["awaiting_counter_signature", "concluded"]
    signing: SigningPublic
    transaction: TransactionPublic | None = None
    agreement: AgreementPublic | None = None


class AgreementPublic(BaseModel):
    id: int
    request_id: int
    resource_id: int
    provider: int
    consumer: int
    status: str
    valid_from: int
    valid_until: int
    terms_digest: str
    terms: StoredText | None = Field(
        default=None, description="its request's stored terms document (see RequestPublic)"
    )


# --- grants and deliveries ----------------------------------------------------------------------------------


class GrantCreate(Strict):
    agreement_id: Id64
    expires_at: Uint64


class GrantPublic(BaseModel):
    id: int
    agreement_id: int
    provider: int
    consumer: int
    expires_at: int
    revoked: bool


class DeliveryCreate(Strict):
    delivery_id: Bytes32Hex
    grant_id: Id64
    commitment: Bytes32Hex
    hash_algorithm: HashAlgorithmName = HashAlgorithmName.SHA256
    byte_size: DeliveryCount
    record_count: DeliveryCount = 0


#: Most deliveries one ``POST /deliveries/batch`` records: one transaction of about 31,000 gas per delivery
#: stays far inside a block, and 200 items stay inside the request body limit.
MAX_BATCH_DELIVERIES = 200


class DeliveryBatchCreate(Strict):
    deliveries: Annotated[list[DeliveryCreate], Field(min_length=1, max_length=MAX_BATCH_DELIVERIES)]


class DeliverySettle(Strict):
    consumer_commitment: Bytes32Hex | None = Field(
        default=None, description="the commitment the consumer computed; defaults to the recorded one"
    )


class DeliveryDispute(Strict):
    consumer_commitment: Bytes32Hex


class DeliveryPublic(BaseModel):
    delivery_id: str
    grant_id: int
    provider: int
    consumer: int
    commitment: str
    hash_algorithm: HashAlgorithmName | None = Field(
        description="the algorithm's name; null for an id this service does not know (see hash_algorithm_id)"
    )
    hash_algorithm_id: int = Field(description="the algorithm id as recorded on chain (1 SHA-256, 2 SM3)")
    byte_size: int
    record_count: int
    recorded_at: int
    recorded_in_block: int
    status: str


class DeliveryBatchPublic(BaseModel):
    """What a batch returns: the one transaction that recorded it and the records, in the order posted."""

    transaction: TransactionPublic
    records: list[DeliveryPublic]


SignatureOutcome.model_rebuild()


class ReceiptCreate(DeliveryCreate):
    """One receipt of ``POST /receipts``: the fields of ``POST /deliveries``."""


#: Receipts one ``POST /receipts`` may carry (about 2.6 MB of JSON; the route's body limit is 4 MiB).
MAX_RECEIPTS_PER_REQUEST = 10_000


class ReceiptsCreate(Strict):
    """The body of ``POST /receipts`` (documentation: the route checks it without building a model per
    receipt)."""

    receipts: list[ReceiptCreate] = Field(min_length=1, max_length=MAX_RECEIPTS_PER_REQUEST)


class ReceiptsAccepted(BaseModel):
    """Answer to ``POST /receipts``: every receipt is journaled; follow ``GET /receipts/{id}``."""

    status: str = Field(description="`pending`: journaled, to be anchored in a batch")
    count: int
    delivery_ids: list[str]


class ReceiptBatchPublic(BaseModel):
    grant_id: int
    first_sequence: int
    leaf_count: int
    root: str
    tx_hash: str | None
    block_number: int | None


class ReceiptPublic(BaseModel):
    """A receipt, where it stands and, once in a batch, the inclusion proof that
    :func:`verifier.receipts.verify_receipt_proof` and ``ReceiptAnchors.receiptIncluded`` check."""

    delivery_id: str
    grant_id: int
    provider: int
    consumer: int
    commitment: str
    hash_algorithm: str
    byte_size: int
    record_count: int
    status: str = Field(
        description="pending → anchored (batch closed, transaction sent) → final (mined); or refused; "
        "corrupt: its journal row is not what the service wrote (changed outside it), `error` says how"
    )
    accepted_at: float
    sequence: int | None
    batch: ReceiptBatchPublic | None
    proof: dict[str, Any] | None
    anchors: str = Field(description="address of the ReceiptAnchors contract")
    error: str | None = Field(
        description="why the contract refused the batch (status refused): the error code the API answers for "
        "the same cause, e.g. DEPARTMENT_NOT_ACTIVE, GRANT_REVOKED; what in the journal is wrong (corrupt)"
    )


class ReceiptLookup(Strict):
    delivery_ids: list[Bytes32Hex] = Field(min_length=1, max_length=1000)


class ReceiptList(BaseModel):
    receipts: list[ReceiptPublic]


class ReceiptBatchSettledBatch(BaseModel):
    grant_id: int
    first_sequence: int
    leaf_count: int
    root: str
    status: str


class ReceiptBatchSettled(BaseModel):
    transaction: TransactionPublic
    batch: ReceiptBatchSettledBatch


class ReceiptDisputed(BaseModel):
    transaction: TransactionPublic
    receipt: ReceiptPublic
    consumer_commitment: str


ProposalPublic.model_rebuild()


# --- demand lists and mutual evaluation ---------------------------------------------------------------------


class DemandDocument(Strict):
    """What a department needs: the text a demand's on-chain hash is the canonical SHA-256 of. Read in lists
    before the addressee answers, as a catalog entry is before anyone requests it: its title and each data
    item named is one line of visible text, the rest may run over lines but shows in the order it is hashed
    in (the catalog's rules)."""

    title: Annotated[str, Field(min_length=1, max_length=500, description="what data is needed"), PlainLine]
    # The text's rule on the text alone: null is no description.
    description: Annotated[str, Field(max_length=10_000), InOrderText] | None = None
    purpose: Annotated[str, Field(min_length=1, max_length=2000, description="why it is needed"), InOrderText]
    legal_basis: Annotated[str, Field(min_length=1, max_length=2000), InOrderText]
    # Bounded so that even a list one item over its maximum stays under the body limit (a 422, not a 413).
    # A data list as the catalog's columns and the terms' are: each named once, and one at least if given
    # (null is no list; an empty one hashed apart from the same demand without it).
    fields: Annotated[
        Annotated[list[Annotated[str, Field(min_length=1, max_length=200), PlainLine]], _NamedOnce] | None,
        Field(min_length=1, max_length=50, description="data items wanted"),
    ] = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class DemandCreate(Strict):
    document: DemandDocument
    #: The department asked for the data (its code), active (409 ``DEPARTMENT_NOT_ACTIVE`` naming
    #: ``addressee`` for a suspended one, which could not answer); omitted when the publisher does not know
    #: who holds it.
    addressee: Annotated[DepartmentCode | None, Field(examples=[DEMO_ADDRESSEE])] = None
    #: Unix time by which an answer is wanted: at least a week (``DEMAND_NOTICE_S``) after the next block's
    #: time, for it marks a late addressee overdue (422 ``INVALID_FIELD`` naming ``due_by`` and
    #: ``earliest_due_by`` otherwise, judged by the chain's clock, not the client's).
    due_by: Annotated[Uint64, Field(examples=[EXAMPLE_END])]


class DemandAnswerName(StrEnum):
    NEW_RESOURCE = "new_resource"
    EXISTING_RESOURCE = "existing_resource"
    DECLINED = "declined"


class DeclineReasonName(StrEnum):
    """:class:`node.types.DeclineReason`, by name."""

    NOT_HELD = "not_held"
    HELD_ELSEWHERE = "held_elsewhere"
    LEGALLY_RESTRICTED = "legally_restricted"
    INSUFFICIENT_LEGAL_BASIS = "insufficient_legal_basis"
    PURPOSE_NOT_JUSTIFIED = "purpose_not_justified"


class DemandAnswerCreate(Strict):
    """A resource that meets the demand (new: catalogued after it was published; existing: before), or a
    decline with its reason (the addressee's alone: a demand addressed to no one is answered with a resource,
    DECLINE_NEEDS_ADDRESSEE otherwise)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                _both(
                    {"properties": {"answer": {"const": "declined"}}},
                    _given("decline_reason"),
                    _absent("resource_id"),
                ),
                _both(
                    {"properties": {"answer": {"not": {"const": "declined"}}}},
                    _given("resource_id"),
                    _absent("decline_reason"),
                ),
            ]
        }
    )

    answer: DemandAnswerName
    resource_id: Id64 | None = None
    decline_reason: DeclineReasonName | None = None
    #: Read by the publisher and auditors: shows in the order it is hashed in.
    note: Annotated[str, Field(min_length=1, max_length=2000), InOrderText] | None = None

    @model_validator(mode="after")
    def _fits(self) -> DemandAnswerCreate:
        if self.answer is DemandAnswerName.DECLINED:
            if self.decline_reason is None or self.resource_id is not None:
                raise FieldRuleError(
                    "resource_id" if self.resource_id is not None else "decline_reason",
                    "a decline gives decline_reason and no resource_id",
                )
        elif self.resource_id is None or self.decline_reason is not None:
            raise FieldRuleError(
                "decline_reason" if self.decline_reason is not None else "resource_id",
                "a resource answer gives resource_id and no decline_reason",
            )
        return self


class RejectionReasonName(StrEnum):
    """:class:`node.types.RejectionReason`, by name."""

    NOT_THE_DATA_ASKED = "not_the_data_asked"
    INCOMPLETE = "incomplete"
    NOT_CURRENT = "not_current"
    CONDITIONS_UNMEETABLE = "conditions_unmeetable"


class DemandRejectionCreate(Strict):
    """The publisher's rejection of the resource its demand was answered with, as not meeting the demand:
    the demand waits for an answer again (a demand addressed to no one, from any department but the rejected
    answerer)."""

    reason: RejectionReasonName
    #: Read by the answerer and auditors: shows in the order it is hashed in.
    note: Annotated[str, Field(min_length=1, max_length=2000), InOrderText] | None = None


class DemandAnswerPublic(BaseModel):
    answer: DemandAnswerName
    answered_by: int
    answered_at: int
    resource_id: int | None = None
    decline_reason: str | None = None
    decline_code: int | None = None
    note: StoredText | None = None


class DemandRejectionPublic(BaseModel):
    """An answer the publisher rejected, and why: it never meets the demand."""

    answer: DemandAnswerName
    answered_by: int
    answered_at: int
    resource_id: int
    rejected_at: int
    reason: RejectionReasonName
    reason_code: int
    note: StoredText | None = None


class DemandPublic(BaseModel):
    id: int
    publisher: int
    addressee: int | None
    published_at: int
    due_by: int
    catalog_size: int = Field(
        description="entries in the catalog when the demand was published: an answer's resource up to this "
        "id is an existing one, above it a new one, and the ledger refuses the other kind (RESOURCE_UNFIT)"
    )
    overdue: bool = Field(
        description="answered after due_by, or unanswered with due_by passed by the chain's clock (the "
        "latest block's time): the addressee may still answer, late, and the scorecard counts it overdue"
    )
    text_hash: str
    document: dict[str, Any] | None = None
    verified: bool = False
    status: str = Field(
        description="open, withdrawn, or the standing answer (new_resource, existing_resource, declined)"
    )
    answer: DemandAnswerPublic | None = None
    #: The answers its publisher rejected, oldest first.
    rejections: list[DemandRejectionPublic] = []
    #: Block time its publisher withdrew it at (null: not withdrawn); a withdrawn demand is never overdue.
    withdrawn_at: int | None = None


Score = Annotated[int, Field(ge=1, le=5, strict=True)]


#: The scores the consumer gives the provider, and the one the provider gives the consumer.
CONSUMER_SCORES = ("timeliness", "completeness", "accuracy")
PROVIDER_SCORES = ("purpose_compliance",)


class EvaluationCreate(Strict):
    """The consumer scores timeliness, completeness and accuracy; the provider scores purpose_compliance
    (a score of the other side's is refused). ``delivery_id`` names a delivery under the agreement:
    evaluation follows delivery. The comment is read by the other side and auditors, and shows in the order
    it is hashed in."""

    delivery_id: Bytes32Hex
    timeliness: Score | None = None
    completeness: Score | None = None
    accuracy: Score | None = None
    purpose_compliance: Score | None = None
    comment: Annotated[str, Field(min_length=1, max_length=2000), InOrderText] | None = None


class EvaluationPublic(BaseModel):
    agreement_id: int
    period: int
    scored_side: Literal["provider", "consumer"]
    scorer: int
    scored: int
    scores: dict[str, int]
    comment: StoredText | None = None
    block_number: int


class EvaluationPeriodPublic(BaseModel):
    """The practice contract's evaluation period by the chain's clock: each side of an agreement is scored at
    most once per period, numbered from the epoch (``period`` of every evaluation)."""

    length_seconds: int
    current: int
    #: First second of the current period and of the next (Unix times).
    starts_at: int
    ends_at: int
    #: The chain's latest block time, which ``current`` is read by.
    chain_time: int
    #: The inspection rules the console's form reads with the grid, so that neither is copied into it: the
    #: notice a sampled provider has from the draw (``PRESENTATION_NOTICE_S``) and the least
    #: ``present_within`` ``POST /inspections`` takes (``MIN_PRESENT_WITHIN_S``), in seconds.
    presentation_notice_seconds: int = PRESENTATION_NOTICE_S
    min_present_within_seconds: int = MIN_PRESENT_WITHIN_S


# --- sampling inspection ------------------------------------------------------------------------------------


class InspectionCreate(Strict):
    """Inspect the deliveries recorded in ``[period_from, period_to)`` (Unix times): whole evaluation periods
    (both bounds multiples of the practice contract's period, ``GET /evaluation-period``), over by the chain's
    clock. The sample is seeded by the hash of the block ``seed_delay_blocks`` after the current head."""

    period_from: Uint64
    period_to: Uint64
    sample_size: Annotated[int, Field(ge=1, le=1000, strict=True)]
    # At least 2: the opening is mined in the block after the head at the earliest, and the contract takes
    # only a seed block after the one it is mined in (1 was always refused, as a bare revert).
    seed_delay_blocks: Annotated[int, Field(ge=2, le=200, strict=True)] = 2
    #: How long sampled providers have to present, in seconds from now: at least ``MIN_PRESENT_WITHIN_S``
    #: (4 days, the schema's ``minimum``), for a sample drawn less than ``PRESENTATION_NOTICE_S`` (3 days)
    #: before the deadline is never recorded not presented.
    present_within: Annotated[
        int, Field(ge=1, le=365 * 86400, strict=True, json_schema_extra={"minimum": MIN_PRESENT_WITHIN_S})
    ] = 7 * 86400

    @model_validator(mode="after")
    def _period_runs_forward(self) -> InspectionCreate:
        # The contract refuses periodFrom >= periodTo (PracticeInvalidInspection("periodFrom")).
        if self.period_from >= self.period_to:
            raise FieldRuleError(
                "period_to", "period_from must be before period_to (the period is [period_from, period_to))"
            )
        return self

    @model_validator(mode="after")
    def _present_within_leaves_notice(self) -> InspectionCreate:
        # Refused before anything is sent: the ledger would open it, and its providers could never be found
        # not presenting (node.practice.presentable). The margin over the notice is argued at the constant.
        if self.present_within < MIN_PRESENT_WITHIN_S:
            notice, least = PRESENTATION_NOTICE_S // 86400, MIN_PRESENT_WITHIN_S // 86400
            raise FieldRuleError(
                "present_within",
                f"providers have {notice} days from the draw to present, and the draw comes some blocks "
                f"after the opening: present_within must be at least {MIN_PRESENT_WITHIN_S} s ({least} "
                f"days), or no sampled delivery could ever be recorded not presented ({self.present_within} "
                "s given)",
            )
        return self


class SampledDelivery(BaseModel):
    #: A delivery id, or a receipt's slot (first 16 bytes zero: grant and sequence, see ``grant_id``).
    delivery_id: str
    provider: int
    #: For a drawn receipt: its grant and sequence (the anchored batch holding it); None for a delivery.
    grant_id: int | None = None
    sequence: int | None = None
    #: The latest presentation's verdict status (``MATCH`` passes), None if not presented.
    presented: str | None = None
    #: Recorded on chain: ``passed``, ``failed``, ``not_presented``; None if not recorded yet.
    outcome: str | None = None
    outcome_as_checked: bool | None = Field(
        default=None,
        description="whether the outcome recorded on chain is the one the service's check calls for, with "
        "its evidence: passed for the kept presentation's MATCH verdict, failed for any other, with the "
        "SHA-256 of that verdict; not_presented with a zero hash when none was kept. False for an outcome "
        "recorded around the service (the contract takes any outcome and evidence hash an auditor's key "
        "sends); None while no outcome is recorded",
    )
    overdue: bool = Field(
        default=False,
        description="its presentation deadline passed by the chain's clock (the latest block's time) with no "
        "outcome recorded, as the provider's scorecard counts it (inspections.overdue) until the auditor "
        "records one",
    )


class InspectionPublic(BaseModel):
    id: int
    auditor: str
    #: ``expired``: not drawn while its seed block's hash was known (256 blocks); it never will be.
    status: Literal["open", "drawn", "expired"]
    period_from: int
    period_to: int
    sample_size: int
    seed_block: int
    present_by: int
    seed: str | None = None
    #: How many deliveries the period holds (known once drawn).
    population_size: int | None = None
    #: The drawn deliveries in draw order (recomputable with ``verifier.sampling``), once drawn.
    sample: list[SampledDelivery] = Field(default_factory=list)


class PresentationCreate(Strict):
    """A sampled provider presents a delivery: its payload and manifest, checked against the chain."""

    delivery_id: Bytes32Hex
    manifest: ManifestDocument
    payload_base64: str


def _findings_schema(schema: dict[str, Any]) -> None:
    # The findings stay an extra field, so the answer keeps the verdict JSON's order of fields (status, block,
    # then Verdict.to_dict's); the document still holds each finding's code to the declared ones.
    schema["properties"]["findings"] = {
        "type": "array",
        "title": "Findings",
        "description": "The reasons behind the status, each a code (verifier/MANIFEST.md) and a sentence.",
        "items": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "enum": [c.value for c in FindingCode], "title": "Code"},
                "message": {"type": "string", "title": "Message"},
            },
            "required": ["code", "message"],
        },
    }


class VerdictPublic(BaseModel):
    """The verdict of ``POST /verify``: the verdict JSON of ``dxl verify --json``
    (:meth:`verifier.verify.Verdict.to_dict`: ``delivery_id``, ``findings``, ``anchor``, the leaf ranges...)
    without its ``chain_checked`` and ``node``, with the block every read of it was made at in their place
    (the command's ``node.block``)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_findings_schema)

    status: VerdictStatus = Field(description="The verdict (verifier/MANIFEST.md, Verdicts).")
    block: int | None = Field(
        description="The node's head as the check began, and the block every read of the chain was made at, "
        "whatever is mined meanwhile: the verdict held there, and can be read again there. None for a "
        "manifest POST /verify found altered (UNTRUSTED, MANIFEST_INCONSISTENT), answered without reading "
        "the chain; a presentation to an inspection names the block it was judged at (its deadline) in "
        "every case."
    )


class PresentationPublic(BaseModel):
    inspection_id: int
    delivery_id: str
    #: The verdict kept (and hashed as the outcome's evidence), ``block`` the block it was judged at: the
    #: deadline by that block's time, every read of the chain there (also for a manifest found altered); kept
    #: as the presenting department sees a verdict, without the address of the service's node.
    verdict: VerdictPublic


class OutcomeCreate(Strict):
    """Record the outcome of a sampled delivery: ``passed``/``failed`` from its presentation's verdict, or
    ``not_presented`` once the deadline passed without one."""

    delivery_id: Bytes32Hex
