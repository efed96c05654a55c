"""Mailers: `SmtpMailer` delivers through an SMTP server, `LogMailer` writes the link to the log."""

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

import aiosmtplib

from dropp.core.config import Settings

logger = logging.getLogger(__name__)


class MailNotSent(Exception):
    """The mail server could not be reached or refused the message."""


@dataclass(frozen=True, slots=True)
class Mail:
    """A plain-text message asking its reader to open one link."""

    to: str
    subject: str
    text: str
    link: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Deliver `mail` or raise MailNotSent."""
        ...


def build_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    # Date and Message-ID are expected by receiving servers; without them, spam scores rise.
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    message.set_content(mail.text)
    return message


class SmtpMailer:
    """One SMTP connection per message: mail is rare here, and nothing is left open."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.sender = settings.smtp_from
        self.timeout = settings.smtp_timeout_seconds

    async def send(self, mail: Mail) -> None:
        try:
            await aiosmtplib.send(
                build_message(mail, self.sender),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password.get_secret_value() if self.password else None,
                use_tls=self.security == "tls",
                # False, not None: with "none", aiosmtplib must not upgrade on its own either.
                start_tls=self.security == "starttls",
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise MailNotSent(f"{self.host}:{self.port}: {error}") from error


class LogMailer:
    """For embedded and development use without a mail server: the person reading the server's
    log follows the link instead."""

    async def send(self, mail: Mail) -> None:
        logger.warning(
            "SMTP_HOST is not set, so this email was not sent. To %s, %r: %s",
            mail.to,
            mail.subject,
            mail.link,
        )


def create_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host is None:
        return LogMailer()
    return SmtpMailer(settings)
