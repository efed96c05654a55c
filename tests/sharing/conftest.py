"""The sharing tests' app lets every account share with a role: most of these tests are about
what a role share gives. Who may make one, with the default ROLE_SHARES_BY=admin, is tested in
test_people_role_shares.py on an app of its own."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from dropp.core.config import Settings
from tests.conftest import running_app


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings.model_copy(update={"role_shares_by": "everyone"})) as started:
        yield started
