"""Field types shared by the API's schemas."""

from typing import Annotated

from pydantic import WithJsonSchema

# A UUID that a page query selects as text (`core.db.as_text`). Pages of up to 1,000 entries
# serialized UUID objects at several times the cost of the strings PostgreSQL prints, which
# are the same canonical form. Documented as a UUID all the same.
UuidText = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
