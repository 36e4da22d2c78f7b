// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Well-formed UTF-8
/// @notice The ABI's `string` is UTF-8 by convention only: the EVM takes any bytes. A log holding bytes that are
/// not UTF-8 decodes in no strict reader (Python's codec, the ABI libraries'), so strings the ledger logs are
/// checked here first.
library Utf8 {
    /// The top bit of each of 32 bytes: a word of ASCII has none of them set.
    uint256 private constant HIGH_BITS = 0x8080808080808080808080808080808080808080808080808080808080808080;

    /// @notice Whether `text` is well-formed UTF-8 (RFC 3629; the Unicode standard's table 3-7): no overlong
    /// form, no surrogate, nothing past U+10FFFF, no truncated or stray continuation byte. What Python's
    /// strict `bytes.decode("utf-8")` accepts, byte for byte.
    function isValid(bytes calldata text) internal pure returns (bool) {
        uint256 n = text.length;
        uint256 i;
        unchecked {
            while (i < n) {
                // The next 32 bytes as a word, its first byte the most significant; past the end it holds the
                // next argument's bytes, which `left` keeps out.
                uint256 word;
                assembly ("memory-safe") {
                    word := calldataload(add(text.offset, i))
                }
                uint256 left = n - i;
                uint256 step = left < 32 ? left : 32;
                // ASCII a word at a time (most purposes are, or start so).
                if (word & (HIGH_BITS << ((32 - step) * 8)) == 0) {
                    i += step;
                    continue;
                }
                uint256 c = word >> 248;
                if (c < 0x80) {
                    ++i;
                    continue;
                }
                // The sequence's length, and the range of its second byte where the lead narrows it (E0, ED,
                // F0, F4 exclude overlongs, surrogates and code points past U+10FFFF).
                uint256 len;
                uint256 lo = 0x80;
                uint256 hi = 0xBF;
                if (c < 0xC2) {
                    return false;
                } else if (c < 0xE0) {
                    len = 2;
                } else if (c < 0xF0) {
                    len = 3;
                    if (c == 0xE0) lo = 0xA0;
                    else if (c == 0xED) hi = 0x9F;
                } else if (c < 0xF5) {
                    len = 4;
                    if (c == 0xF0) lo = 0x90;
                    else if (c == 0xF4) hi = 0x8F;
                } else {
                    return false;
                }
                if (left < len) return false;
                for (uint256 k = 1; k < len; ++k) {
                    uint256 b = (word >> (248 - 8 * k)) & 0xFF;
                    if (b < lo || b > hi) return false;
                    (lo, hi) = (0x80, 0xBF);
                }
                i += len;
            }
        }
        return true;
    }
}
