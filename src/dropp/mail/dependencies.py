from typing import Annotated

from fastapi import Depends, Request

from dropp.mail.sender import Mailer


async def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.state.mailer
    return mailer


MailerDep = Annotated[Mailer, Depends(get_mailer)]
