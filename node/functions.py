"""A contract's functions resolved once: calldata and results without web3's search of the whole ABI per call.

web3's ``contract.encode_abi(name, args)`` and ``contract.functions[name](*args).call()`` match the name and
the arguments against every entry of the ABI on each call (a selector hashed per entry: about 0.6 ms for the
ledger's 132 entries) and run every argument through normalizers that, for values already in their plain form,
change nothing. Here each function's selector and types are worked out once. Arguments in the plain form
(checksummed address strings or 20 bytes, bytes for the bytes types, ``str`` for strings, ints and bools,
lists or tuples for tuples and arrays) are encoded straight by web3's own codec, which is what web3 ends with
too; anything else (a hex string for a ``bytes32``, a lower-case address, an ENS name, a wrong count, an
overloaded name) goes through web3's path, which converts it or raises as it always did. Results are decoded
by the same codec and shaped as web3 shapes them (arrays as lists, structs as tuples, checksummed addresses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from eth_abi.exceptions import EncodingError
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types

from verifier.eth import is_checksum_address, to_checksum_address

if TYPE_CHECKING:
    from eth_abi.codec import ABICodec
    from eth_typing import ABIFunction
    from web3.contract import Contract

#: Whether a value is in the form web3's argument normalizers leave unchanged.
_Check = Callable[[Any], bool]
#: A decoded value shaped as web3 returns it.
_Shape = Callable[[Any], Any]


def _always(_value: Any) -> bool:
    return True


def _is_address(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        return len(value) == 20
    return isinstance(value, str) and is_checksum_address(value)


def _is_bytes(value: Any) -> bool:
    return isinstance(value, bytes | bytearray)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _array_check(item: _Check) -> _Check:
    return lambda value: isinstance(value, list | tuple) and all(item(v) for v in value)


def _tuple_check(fields: Sequence[_Check]) -> _Check:
    return lambda value: (
        isinstance(value, list | tuple)
        and len(value) == len(fields)
        and all(check(v) for check, v in zip(fields, value, strict=True))
    )


def _check(param: Mapping[str, Any]) -> _Check | None:
    """The plain-form check of an ABI parameter; None for types this module leaves to web3."""
    kind = str(param["type"])
    if kind.endswith("]"):
        item = _check({**param, "type": kind[: kind.rindex("[")]})
        return None if item is None else _array_check(item)
    if kind == "tuple":
        fields = [_check(c) for c in param["components"]]
        return None if any(f is None for f in fields) else _tuple_check(cast(list[_Check], fields))
    if kind == "address":
        return _is_address
    if kind.startswith("bytes"):
        return _is_bytes
    if kind == "string":
        return _is_text
    if kind == "bool" or kind.startswith(("uint", "int")):
        return _always  # the codec checks kind and range itself; no normalizer touches them
    return None


def _same(value: Any) -> Any:
    return value


def _shape(param: Mapping[str, Any]) -> _Shape:
    """How web3 shapes a decoded value of ``param`` (``addresses_checksummed`` through ``map_abi_data``)."""
    kind = str(param["type"])
    if kind.endswith("]"):
        item = _shape({**param, "type": kind[: kind.rindex("[")]})
        return lambda value: [item(v) for v in value]
    if kind == "tuple":
        fields = [_shape(c) for c in param["components"]]
        return lambda value: tuple(f(v) for f, v in zip(fields, value, strict=True))
    if kind == "address":
        return to_checksum_address
    return _same


@dataclass(frozen=True)
class _Function:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    check: _Check | None
    shape: tuple[_Shape, ...]


class ContractFunctions:
    """Encodes calls to the functions of ``abi`` and decodes their results as web3 does, resolving each
    function once (see the module's docstring). ``codec`` is web3's (``w3.codec``); ``contract`` gives web3's
    contract object for the same ABI, asked for only when web3 must encode."""

    def __init__(
        self, abi: Sequence[Mapping[str, Any]], codec: ABICodec, contract: Callable[[], Contract]
    ) -> None:
        self._contract = contract
        self._codec = codec
        entries = [e for e in abi if e.get("type") == "function"]
        names = [str(e["name"]) for e in entries]
        self._functions: dict[str, _Function] = {}
        for entry in entries:
            name = str(entry["name"])
            if names.count(name) > 1:
                continue  # overloaded: web3 picks the overload by the arguments
            checks = [_check(p) for p in entry.get("inputs", [])]
            function = cast("ABIFunction", entry)
            self._functions[name] = _Function(
                selector=function_abi_to_4byte_selector(function),
                inputs=tuple(get_abi_input_types(function)),
                outputs=tuple(get_abi_output_types(function)),
                check=None if any(c is None for c in checks) else _tuple_check(cast(list[_Check], checks)),
                shape=tuple(_shape(p) for p in entry.get("outputs", [])),
            )

    def calldata(self, fn: str, args: Sequence[Any]) -> str:
        """``0x``-hex calldata of ``fn(*args)``, the same as ``contract.encode_abi(fn, args)``.

        Raises:
            whatever ``contract.encode_abi`` raises for arguments that do not fit ``fn``.
        """
        fast = self.plain_calldata(fn, args)
        return fast if fast is not None else self._contract().encode_abi(fn, args=list(args))

    def plain_calldata(self, fn: str, args: Sequence[Any]) -> str | None:
        """The calldata of ``fn(*args)`` when this module encodes it (plain arguments that fit a function
        resolved here); None when web3 must, to convert the arguments or to refuse them in its own words."""
        known = self._functions.get(fn)
        if known is None or known.check is None or not known.check(args):
            return None
        try:
            return "0x" + (known.selector + self._codec.encode(known.inputs, args)).hex()
        except EncodingError:
            return None  # out of range, or of the wrong kind

    def result(self, fn: str, data: bytes) -> Any:
        """The value web3's ``call()`` of ``fn`` returns for the answer ``data``: a single output unwrapped,
        several as a list.

        Raises:
            KeyError: ``fn`` is not resolved here (only after :meth:`plain_calldata` gave calldata is it).
            eth_abi.exceptions.DecodingError: ``data`` does not decode (web3 explains why: no code there).
        """
        known = self._functions[fn]
        values = self._codec.decode(known.outputs, data)
        shaped = [shape(v) for shape, v in zip(known.shape, values, strict=True)]
        return shaped[0] if len(shaped) == 1 else shaped
