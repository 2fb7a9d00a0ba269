"""A real SMTP server on a free local port, for the tests' e-mail: Django's own SMTP backend
talks to it over a socket, as it would to Cloud Run's relay, and every message it received is
kept, parsed with the standard library's `email`, for assertions.

Built on aiosmtpd (its `Controller` runs the asyncio server on a thread of its own), so the mail
the tests read went through Django's SMTP backend, the headers' encoding and the MIME parts: the
locmem backend would hand the tests the Python objects, before any of that.
"""

import email
import email.policy
import logging
import threading
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from standins.http import free_port

# aiosmtpd logs every SMTP command at INFO: noise around a failing test's own log lines.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Received:
    """One message as the server got it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    # The client's address and port: one per SMTP connection, to count the connections used.
    peer: tuple = ()

    @property
    def subject(self) -> str:
        # Django folds a non-ASCII subject onto the next line ("Subject: \n =?utf-8?q?..."),
        # which parses back with a leading space; mail clients show it without.
        return str(self.message["Subject"]).strip()

    @property
    def to(self) -> str:
        return str(self.message["To"])

    def part(self, content_type: str) -> str:
        """The text of the part of that type ("text/plain", "text/html"), decoded."""
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        if body is None or body.get_content_type() != content_type:
            raise AssertionError(f"no {content_type} part in {self.subject!r}")
        return body.get_content().replace("\r\n", "\n")  # SMTP's line ends, as written

    @property
    def text(self) -> str:
        return self.part("text/plain")


class MailServer:
    """Collects what it receives in `messages`; `refuse` makes it answer every RCPT with 550."""

    def __init__(self):
        self.messages: list[Received] = []
        self.refuse = False
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def start(self) -> "MailServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list[Received]:
        """The messages whose envelope named `address`."""
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    # aiosmtpd's handler hooks.
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        received = Received(
            envelope.mail_from, tuple(envelope.rcpt_tos), message, tuple(session.peer or ())
        )
        with self.lock:
            self.messages.append(received)
        return "250 Message accepted for delivery"
