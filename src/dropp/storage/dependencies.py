from typing import Annotated

from fastapi import Depends, Request

from dropp.storage.s3 import Storage


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.state.storage
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]
