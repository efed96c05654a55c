"""Signing in: the ways a person or a script gets a session for this device."""

from dropp.client.api import Api
from dropp.client.credentials import Tokens
from dropp.client.errors import ApiError, ClientError


async def sign_in_with_password(api: Api, email: str, password: str) -> Tokens:
    """For scripts: `dropp login --email E --password-stdin`."""
    try:
        answer = await api.post(
            "/auth/login", {"email": email, "password": password}, authenticated=False
        )
    except ApiError as error:
        if error.status == 401:
            raise ClientError("Wrong email or password.") from error
        raise
    tokens = Tokens.from_answer(answer)
    api.adopt(tokens)
    return tokens


async def sign_out(api: Api) -> None:
    """Revoke this device's session on the server, then forget it here."""
    tokens = api.tokens
    if tokens is not None:
        await api.post("/auth/logout", {"refresh_token": tokens.refresh_token}, authenticated=False)
    api.forget()
