"""Fault drill: the SMTP server (a real aiosmtpd) refuses for a while, with 421 or 451, at
RCPT or at DATA, then accepts. Each `manage.py digest send --due` is its own process, as
beat would run it: the digest stays composed with the refusal recorded, is delivered once
when the server accepts, and later runs send nothing again."""
import pytest

from reviewapp.models import Digest
from tests.integration.test_digest_sending import finish, live_demo, parsed, run_send, smtp  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REFUSED_RUNS = 2


@pytest.mark.parametrize("code,at", [(421, "RCPT"), (451, "DATA")])
def test_smtp_refusing_then_accepting_delivers_the_digest_once(live_demo, smtp, settings, code, at):  # noqa: F811
    smtp.refuse(code, at=at)
    for attempt in range(1, REFUSED_RUNS + 1):
        finish(run_send(settings, smtp.port))
        row = Digest.objects.get()
        assert (row.state, row.attempts) == (Digest.COMPOSED, attempt)
        assert str(code) in row.error  # the refusal is recorded, with its code
        assert row.lease_until is None  # the sender let go of it: nothing claimed for ever
    assert smtp.messages == []

    smtp.accept()
    assert "sent" in finish(run_send(settings, smtp.port))
    for _ in range(2):  # later beats: nothing is sent twice
        assert finish(run_send(settings, smtp.port)).strip() == "nothing due"
    row = Digest.objects.get()
    assert (row.state, row.attempts, row.error, row.lease_until) == (Digest.SENT, REFUSED_RUNS + 1, "", None)
    assert row.sent is not None
    assert len(smtp.messages) == 1
    assert parsed(smtp.messages[0])["Message-ID"] == row.message_id
