from typing import Annotated

from fastapi import Depends, Request

from dropp.core.config import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
