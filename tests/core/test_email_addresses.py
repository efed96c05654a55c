"""Email fields: the document states the special-use domains the server refuses."""

import re
from typing import Any

import email_validator
import httpx
import pytest

from dropp.admin.schemas import AdminCreate
from dropp.core.config import Settings
from dropp.main import create_app
from tests.helpers import PASSWORD

# Every request schema of the API that takes an address, and its field.
EMAIL_FIELDS = [("UserCreate", "email"), ("GrantCreate", "email")]


def email_schemas(node: Any) -> list[dict[str, Any]]:
    """Every string schema with `format: email` anywhere in the document."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("format") == "email":
            found.append(node)
        for value in node.values():
            found += email_schemas(value)
    elif isinstance(node, list):
        for value in node:
            found += email_schemas(value)
    return found


def email_pattern(settings: Settings) -> str:
    document = create_app(settings).openapi()
    [user_create] = email_schemas(document["components"]["schemas"]["UserCreate"])
    pattern: str = user_create["pattern"]
    return pattern


def test_every_email_field_states_the_refused_domains(settings: Settings) -> None:
    document = create_app(settings).openapi()
    schemas = document["components"]["schemas"]
    taken = [email_schemas(schemas[name]["properties"][field]) for name, field in EMAIL_FIELDS]
    everywhere = email_schemas(document)

    assert all(len(found) == 1 for found in taken)
    patterns = {schema.get("pattern") for schema in everywhere}
    assert patterns == {email_pattern(settings)}
    # `dropp users create-admin` takes its address the same way.
    [admin] = email_schemas(AdminCreate.model_json_schema())
    assert admin["pattern"] == email_pattern(settings)


@pytest.mark.parametrize("domain", email_validator.SPECIAL_USE_DOMAIN_NAMES)
async def test_a_special_use_domain_is_refused_as_the_document_says(
    client: httpx.AsyncClient, settings: Settings, domain: str
) -> None:
    pattern = re.compile(email_pattern(settings))
    addresses = [f"erin@mail.{domain}", f"erin@{domain.upper()}", f"erin@A.{domain.title()}"]

    for address in addresses:
        refused = await client.post("/auth/register", json={"email": address, "password": PASSWORD})
        assert refused.status_code == 422, address
        assert pattern.search(address) is None, address


@pytest.mark.parametrize(
    "address", ["erin@example.com", "erin@test.example.com", "erin@testing.com", "a.test@b.io"]
)
async def test_other_domains_are_taken_as_the_document_says(
    client: httpx.AsyncClient, settings: Settings, address: str
) -> None:
    registered = await client.post("/auth/register", json={"email": address, "password": PASSWORD})

    assert registered.status_code == 201, registered.text
    assert re.compile(email_pattern(settings)).search(address) is not None


def test_the_pattern_refuses_nul(settings: Settings) -> None:
    assert re.compile(email_pattern(settings)).search("erin\x00@example.com") is None
