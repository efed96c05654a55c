from typing import Annotated

from fastapi import Depends, Request

from dropp.core.dependencies import SettingsDep
from dropp.sync.listener import ChangeListener
from dropp.sync.service import cursor_key


async def get_change_listener(request: Request) -> ChangeListener:
    listener: ChangeListener = request.state.change_listener
    return listener


async def get_cursor_key(settings: SettingsDep) -> bytes:
    return cursor_key(settings)


ChangeListenerDep = Annotated[ChangeListener, Depends(get_change_listener)]
CursorKey = Annotated[bytes, Depends(get_cursor_key)]
