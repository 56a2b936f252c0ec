"""Sending digests to a real SMTP server (aiosmtpd on 127.0.0.1): exactly
once across crashes and refusals, threading headers, encodings."""
import email
import email.header
import email.policy
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone as djtz

from reviewapp.models import Digest, Message
from reviewapp.services import digests
from reviewapp.services.ingest import ingest
from tests.conftest import _database_url, wait_for
from tests.integration.test_digest_content import FIRST, SECOND, demo, ingest_demo  # noqa: F401
from tests.support.smtp_server import SmtpServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def smtp(settings):
    with SmtpServer() as server:
        settings.SMTP = server.settings()
        settings.DIGEST_FROM = "reviewapp <digests@review.example.org>"
        yield server


def parsed(received) -> email.message.EmailMessage:
    return email.message_from_bytes(received.data, policy=email.policy.default)


def text_of(msg) -> str:
    return msg.get_content().replace("\r\n", "\n")  # SMTP line ends back to the stored form


@pytest.fixture
def live_demo(settings):
    """Demo mails known since an hour ago, a linux-mm subscription: the
    first digest is due at the real 'now' a subprocess sees."""
    settings.BASE_URL = "https://review.example.org"
    ingest_demo()
    Message.objects.update(received=djtz.now() - timedelta(hours=1))
    return digests.subscribe("linux-mm@kvack.org", "weekly", lists=["linux-mm"], paths=["mm/"])


def run_send(settings, smtp_port: int, **env) -> subprocess.Popen:
    """`manage.py digest send --due` as its own process on the test database."""
    full = dict(os.environ, DATABASE_URL=_database_url(connection.settings_dict),
                SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), DIGEST_FROM=settings.DIGEST_FROM,
                REVIEWAPP_BASE_URL=settings.BASE_URL, **env)
    return subprocess.Popen([sys.executable, "manage.py", "digest", "send", "--due"], cwd=REPO,
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


# ---------------------------------------------------------------- in-process

@pytest.mark.django_db
def test_due_digest_is_delivered_once_and_the_next_replies_to_it(demo, smtp):
    sent = digests.send_due(FIRST)
    assert [state for _, state in sent] == ["sent"]
    assert digests.send_due(FIRST + timedelta(hours=1)) == []
    assert len(smtp.messages) == 1
    first = parsed(smtp.messages[0])
    row = Digest.objects.get()
    sub_id = demo["sub"].pk
    assert first["Message-ID"] == row.message_id == f"<reviewapp-digest.{sub_id}.20261116@review.example.org>"
    assert (first["To"], first["From"]) == ("linux-mm@kvack.org", "reviewapp <digests@review.example.org>")
    assert first["Subject"] == "[reviewapp] linux-mm digest, 2026-11-16..23"
    assert first["In-Reply-To"] is None
    assert text_of(first) == row.body
    assert smtp.messages[0].rcpt_tos == ["linux-mm@kvack.org"]

    digests.send_due(SECOND)
    second = parsed(smtp.messages[1])
    assert second["In-Reply-To"] == second["References"] == first["Message-ID"]
    assert second["Subject"] == "[reviewapp] linux-mm digest, 2026-11-23..29"
    assert len(smtp.messages) == 2


@pytest.mark.django_db
def test_temporary_refusal_keeps_it_for_a_later_run_that_delivers_once(demo, smtp):
    smtp.refuse(451)
    [(row, state)] = digests.send_due(FIRST)
    assert state == "composed" and row.attempts == 1 and "451" in row.error
    assert smtp.messages == []
    smtp.accept()
    [(row, state)] = digests.send_due(FIRST + timedelta(hours=1))
    assert state == "sent" and row.attempts == 2 and row.error == ""
    assert digests.send_due(FIRST + timedelta(hours=2)) == []
    assert len(smtp.messages) == 1
    assert parsed(smtp.messages[0])["Message-ID"] == row.message_id


@pytest.mark.django_db
def test_permanent_refusal_fails_and_is_never_resent(demo, smtp):
    smtp.refuse(550)
    [(row, state)] = digests.send_due(FIRST)
    assert state == digests.FAILED and "550" in row.error
    smtp.accept()
    assert digests.send_due(FIRST + timedelta(hours=1)) == []
    assert smtp.messages == []


@pytest.mark.django_db
def test_temporary_refusals_give_up_after_a_bounded_number_of_attempts(demo, smtp, monkeypatch):
    monkeypatch.setattr(digests, "MAX_ATTEMPTS", 3)
    smtp.refuse(451)
    states = [digests.send_due(FIRST + timedelta(hours=h))[0][1] for h in range(3)]
    assert states == ["composed", "composed", digests.FAILED]
    assert digests.send_due(FIRST + timedelta(hours=4)) == []


@pytest.mark.django_db
def test_non_ascii_author_names_and_subjects_are_encoded(settings, smtp):
    settings.BASE_URL = "https://review.example.org"
    ingest([mail("zz-1@example.org", "[PATCH] mm: résumé the folio walk", "Zoë Łukasiewicz-Ångström"),
            mail("zz-2@example.org", "[PATCH] mm: 大きいページ", "李雷")])
    sub = digests.subscribe("linux-mm@kvack.org", paths=["mm/"], name="linux-mm ünd")
    digests.send_due(djtz.now() + timedelta(hours=1))
    [received] = smtp.messages
    assert max(received.data) < 128  # 7-bit on the wire: no SMTPUTF8 needed
    msg = parsed(received)
    assert msg["Subject"].startswith("[reviewapp] linux-mm ünd digest, ")
    body = text_of(msg)
    assert "Zoë Łukasiewicz-Ångström" in body and "李雷" in body
    assert '"mm: 大きいページ"' in body
    assert body == Digest.objects.get(subscription=sub).body


def mail(msgid: str, subject: str, name: str) -> bytes:
    header = email.header.Header(name, "utf-8").encode()
    return (f"From: {header} <{msgid.split('@')[0]}@example.org>\nSubject: "
            f"{email.header.Header(subject, 'utf-8').encode()}\nMessage-ID: <{msgid}>\n"
            "Date: Mon, 1 Sep 2025 10:00:00 +0000\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            f"Change by {name}.\n\nSigned-off-by: {name} <x@example.org>\n---\n"
            " mm/x.c | 1 +\n\ndiff --git a/mm/x.c b/mm/x.c\nindex 1111111..2222222 100644\n"
            "--- a/mm/x.c\n+++ b/mm/x.c\n@@ -1 +1,2 @@\n a\n+b\n-- \n2.43.0\n").encode()


# ---------------------------------------------------------------- crashes

@pytest.mark.django_db(transaction=True)
def test_crash_between_compose_and_send_delivers_exactly_once(live_demo, smtp, settings):
    # A worker composed the digest (committed) and died before any SMTP traffic.
    [composed] = digests.compose_all_due()
    assert composed.state == Digest.COMPOSED and composed.sending_since is None
    outputs = [finish(run_send(settings, smtp.port)) for _ in range(2)]
    assert len(smtp.messages) == 1, outputs
    msg = parsed(smtp.messages[0])
    assert msg["Message-ID"] == composed.message_id
    assert text_of(msg) == composed.body  # sent as composed, never recomposed
    assert "sent" in outputs[0] and outputs[1].strip() == "nothing due"
    assert Digest.objects.get().state == Digest.SENT


@pytest.mark.django_db(transaction=True)
def test_worker_killed_while_sending_is_resent_once_after_its_claim_goes_stale(
        live_demo, smtp, settings):
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        proc = run_send(settings, silent.getsockname()[1], SMTP_TIMEOUT="120")
        try:
            claimed = wait_for(lambda: Digest.objects.filter(sending_since__isnull=False).first())
            time.sleep(0.3)
            assert proc.poll() is None  # still waiting for the server's greeting
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    row = Digest.objects.get()
    assert row.state == Digest.COMPOSED and row.sending_since == claimed.sending_since
    # The claim may still belong to a live (slow) worker: nobody else sends.
    assert [s for _, s in digests.send_due()] == ["busy"]
    assert smtp.messages == []
    # Its lease expired (nobody renews it): its worker is dead; the next run sends it.
    assert row.lease_until is not None
    Digest.objects.update(lease_until=djtz.now() - timedelta(seconds=1))
    assert "sent" in finish(run_send(settings, smtp.port))
    assert finish(run_send(settings, smtp.port)).strip() == "nothing due"
    assert len(smtp.messages) == 1
    assert parsed(smtp.messages[0])["Message-ID"] == row.message_id


@pytest.mark.django_db(transaction=True)
def test_beat_task_name_sends_through_a_real_celery_worker(live_demo, smtp, celery_worker_proc_factory):
    worker = celery_worker_proc_factory()
    from worker.celery import app
    app.send_task("worker.tasks.send_due_digests")
    wait_for(lambda: Digest.objects.filter(state=Digest.SENT).exists(), timeout=60)
    time.sleep(0.5)
    assert len(smtp.messages) == 1, worker.log()
