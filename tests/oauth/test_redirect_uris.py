"""The redirect URI allowlist, and the JSON Schema that states it in the document."""

import itertools

import jsonschema_rs
import pytest

from dropp.oauth import redirect_uris

ALLOWLIST = ("dropp://auth/callback", "http://127.0.0.1/callback", "http://[::1]/cb?x=1")


@pytest.mark.parametrize(
    "uri",
    [
        "dropp://auth/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:53682/callback",
        "http://127.0.0.1:65535/callback",
        "http://127.0.0.1:08080/callback",
        "http://[::1]:8080/cb?x=1",
    ],
)
def test_listed_uris_and_loopback_ports_are_allowed(uri: str) -> None:
    assert redirect_uris.is_allowed(uri, ALLOWLIST)
    assert jsonschema_rs.validator_for(redirect_uris.schema(ALLOWLIST)).is_valid(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "dropp://auth/callback/",
        "DROPP://auth/callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:123456/callback",
        "http://127.0.0.1:/callback",
        "http://localhost:8080/callback",
        "http://127.0.0.1:8080/callback#fragment",
        "http://127.0.0.1:8080/callback?code=x",
        "http://127.0.0.1:8080/callback\n",
        "http://127.0.0.1/callback\n",
        "http://[::1]:8080/cbXx=1",
    ],
)
def test_other_uris_are_refused(uri: str) -> None:
    assert not redirect_uris.is_allowed(uri, ALLOWLIST)
    assert not jsonschema_rs.validator_for(redirect_uris.schema(ALLOWLIST)).is_valid(uri)


def test_the_schema_takes_exactly_the_ports_the_server_takes() -> None:
    validator = jsonschema_rs.validator_for(redirect_uris.schema(ALLOWLIST))
    ports = [
        "".join(digits)
        for length in range(1, 6)
        for digits in itertools.product("0123456789", repeat=length)
    ]
    for port in [*ports, "100000", "065535", "000001"]:
        uri = f"http://127.0.0.1:{port}/callback"
        assert validator.is_valid(uri) == redirect_uris.is_allowed(uri, ALLOWLIST), uri
