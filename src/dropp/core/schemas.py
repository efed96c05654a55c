"""Field types shared by the API's schemas."""

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

# A UUID that a page query selects as text (`core.db.as_text`). Pages of up to 1,000 entries
# serialized UUID objects at several times the cost of the strings PostgreSQL prints, which
# are the same canonical form. Documented as a UUID all the same.
UuidText = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]


class RequestBody(BaseModel):
    """A JSON request body. Unknown fields are refused (422 `extra_forbidden`), not ignored:
    a misspelt `conflict` or a field this server does not know yet would otherwise be
    dropped without a word, and the client would believe it had been applied."""

    model_config = ConfigDict(extra="forbid")


def present(field: str) -> dict[str, Any]:
    """JSON Schema: `field` is given, with a value other than null (null means absent)."""
    return {"required": [field], "properties": {field: {"not": {"type": "null"}}}}


def exactly_one_of(*fields: str) -> dict[str, Any]:
    """JSON Schema for a body that needs exactly one of these fields, so the document says
    what the model's validator refuses."""
    return {"oneOf": [present(field) for field in fields]}


# RFC 3339, as `format: date-time` means: a date, `T`, a time and an offset.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_text(value: object) -> object:
    # Pydantic would also take a number of seconds since 1970, or a date alone, which the
    # documented `format: date-time` does not allow: one spelling, the documented one.
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("give a date-time as RFC 3339 text, such as 2026-01-31T12:00:00Z")
    return value


DateTimeText = Annotated[datetime, BeforeValidator(_rfc3339_text)]


# What `auth.tokens.new_secret` makes: 256 random bits in URL-safe base64, 43 characters.
LINK_TOKEN_PATTERN = "^[A-Za-z0-9_-]{43}$"

# A share link's or file request's token in a path. The pattern is documented, not enforced:
# any other text is a link that does not exist and answers the same 404 as an unknown one.
LinkToken = Annotated[
    str,
    Path(
        description="The link's secret token.",
        json_schema_extra={"pattern": LINK_TOKEN_PATTERN},
    ),
]


def _whole_number(value: object) -> object:
    # JSON has one number type, and JSON Schema calls 3.0 an integer: a client's encoder may
    # well write one. Text and booleans are refused, not read as numbers.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("give a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("give a whole number")
        return int(value)
    return value


# Put after an int's bounds, `Annotated[int, Field(ge=0), AS_WHOLE_NUMBER]`: before them, Pydantic
# leaves the bounds out of the JSON Schema.
AS_WHOLE_NUMBER = BeforeValidator(_whole_number)
