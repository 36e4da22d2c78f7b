"""A department's code: the one rule every part of dxl holds codes to.

The service admits a department only under such a code (``node.types.admission_data``, which every admission
it proposes is made by), a token names one (``api.auth``), and a delivery manifest names its provider and
consumer by one (``verifier.manifest``, ``manifest.schema.json``): no department the product admits has any
other, so a manifest naming another could only ever differ from the chain. The contract stores any non-zero
``bytes32``; every code by this rule is ASCII of at most 32 bytes, so it fits.
"""

from __future__ import annotations

import re
from typing import TypeGuard

#: The rule as a JSON Schema / OpenAPI ``pattern`` (ECMA-262, where ``$`` is the end of the text): an
#: upper-case ASCII letter, then up to 31 upper-case letters, digits or underscores.
DEPARTMENT_CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,31}$"
#: The same in words, for messages.
DEPARTMENT_CODE_RULE = "an upper-case letter, then up to 31 upper-case letters, digits or _"
# Held with fullmatch: Python's "$" also matches before a final newline ("PSB\n" would pass).
_CODE = re.compile(DEPARTMENT_CODE_PATTERN[1:-1])


def is_department_code(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string that is a department code by :data:`DEPARTMENT_CODE_PATTERN`."""
    return isinstance(value, str) and _CODE.fullmatch(value) is not None
