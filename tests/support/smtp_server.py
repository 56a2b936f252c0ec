"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in a thread.

    with SmtpServer() as server:
        send(msg, server.settings())
        raw = server.messages[0].data          # bytes as received
        server.refuse(451)                     # next DATA gets 451
        server.refuse(550, at="RCPT")          # or refuse recipients
        server.accept()                        # back to normal

Optional login: SmtpServer(auth=("user", "secret")) requires AUTH (over
plain TCP, allowed here because it is loopback only).
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

_TEXT = {451: "4.3.0 Try again later (test refusal)",
         421: "4.7.0 Closing, try later (test refusal)",
         450: "4.2.0 Mailbox busy (test refusal)",
         550: "5.7.1 Rejected (test refusal)",
         554: "5.6.0 Transaction failed (test refusal)"}


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # the message exactly as received after DATA


class _Handler:
    def __init__(self, server: "SmtpServer"):
        self.server = server

    def _refusal(self, stage: str) -> str | None:
        code, at = self.server._refusing
        if code and at == stage:
            return f"{code} {_TEXT.get(code, 'test refusal')}"
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self._refusal("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        refusal = self._refusal("DATA")
        if refusal:
            return refusal
        self.server._store(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                    bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self, auth: tuple[str, str] | None = None):
        self.messages: list[Received] = []
        self.auth = auth
        self._lock = threading.Lock()
        self._refusing: tuple[int | None, str] = (None, "DATA")
        self._controller: Controller | None = None
        self.port = 0

    # ---- switches
    def refuse(self, code: int, at: str = "DATA") -> None:
        """Answer `code` (e.g. 451 temporary, 550 permanent) at DATA or RCPT
        until accept() is called."""
        if at not in ("DATA", "RCPT"):
            raise ValueError("at must be DATA or RCPT")
        self._refusing = (code, at)

    def accept(self) -> None:
        self._refusing = (None, "DATA")

    def _store(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and self.auth is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.auth)
        # handled=False: let aiosmtpd send the 235/535 reply itself.
        return AuthResult(success=ok, handled=False)

    def settings(self, **overrides) -> dict:
        """The smtp dict untangle.digest.send expects, pointing here."""
        user, password = self.auth or (None, None)
        base = {"host": "127.0.0.1", "port": self.port, "user": user,
                "password": password, "starttls": False, "ssl": False, "timeout": 10}
        return {**base, **overrides}

    # ---- lifecycle
    def start(self) -> "SmtpServer":
        kwargs = {}
        if self.auth:
            kwargs = {"authenticator": self._authenticate, "auth_required": True,
                      "auth_require_tls": False}
        last = None
        for _ in range(5):  # the free port may be taken between probe and bind
            port = _free_port()
            controller = Controller(_Handler(self), hostname="127.0.0.1", port=port, **kwargs)
            try:
                controller.start()
            except Exception as exc:  # noqa: BLE001 - retried with another port
                last = exc
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the test SMTP server: {last!r}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
