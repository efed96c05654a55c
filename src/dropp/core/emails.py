"""An email address a client gives: validated by email-validator, documented to match."""

from typing import Annotated

import email_validator
from pydantic import EmailStr, Field

# email-validator (behind EmailStr) refuses these special-use names (RFC 6761 and others:
# `.test`, `.local`, `.onion`, all of `.arpa`...) and every name under them. Built from its
# own list, so the document says what the installed validator refuses, and a client told an
# address is well formed is not refused it.
SPECIAL_USE_DOMAINS: tuple[str, ...] = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def _any_case(name: str) -> str:
    # ECMA-262 patterns have no case-insensitive flag, and the validator compares the
    # domain after lowercasing it.
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else "\\." if c == "." else c for c in name
    )


# Not NUL either (core/strings.py), as every string of the document says.
EMAIL_PATTERN = (
    "^(?![^@]*@(?:[^@]*\\.)?(?:"
    + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAINS)
    + ")$)[^\\x00]*$"
)

# Documented, not enforced by the pattern: email-validator is what refuses these.
EmailAddress = Annotated[
    EmailStr, Field(max_length=320, json_schema_extra={"pattern": EMAIL_PATTERN})
]
