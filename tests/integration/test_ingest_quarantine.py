"""An import never aborts on one mail: a mail that cannot be parsed or stored is
quarantined (raw bytes, reason, source) and every other mail is stored."""
import json

import pytest
from django.db import connection

from reviewapp.models import Message, QuarantinedMail, Revision, Trailer
from reviewapp.services.ingest import ingest
from tests.unit.test_mail_bounds import DIFF, _raw

pytestmark = pytest.mark.django_db(transaction=True)
REFUSED = "refused-by-the-database@example.org"


def _patches(count):
    return [_raw(subject=f"[PATCH] part {i}: change", msgid=f"p{i}@example.org",
                 frm=f"Author {i % 7} <a{i % 7}@example.org>") for i in range(count)]


@pytest.fixture
def database_refuses_one_mail():
    """A real database refusing one row, as PostgreSQL refused a too-long value."""
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute(f"""CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN
                IF NEW.msgid = '{REFUSED}' THEN RAISE check_violation USING MESSAGE = 'refused';
                END IF; RETURN NEW; END $$ LANGUAGE plpgsql""")
            c.execute("CREATE TRIGGER refuse_one BEFORE INSERT ON reviewapp_message "
                      "FOR EACH ROW EXECUTE FUNCTION refuse_one()")
        else:
            c.execute(f"CREATE TRIGGER refuse_one BEFORE INSERT ON reviewapp_message "
                      f"WHEN NEW.msgid = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    yield
    with connection.cursor() as c:
        c.execute("DROP TRIGGER refuse_one ON reviewapp_message" if connection.vendor == "postgresql"
                  else "DROP TRIGGER refuse_one")
        if connection.vendor == "postgresql":
            c.execute("DROP FUNCTION refuse_one()")


def test_one_mail_the_database_refuses_does_not_lose_its_batch(database_refuses_one_mail):
    raws = _patches(2500)
    raws[1200] = _raw(subject="[PATCH] refused: one", msgid=REFUSED)
    raws[1700] = _raw(subject="[PATCH 1/2147483647] huge: count", msgid="huge@example.org")
    result = ingest(raws, source="test.mbox", workers=2)
    assert result.counts() == {"read": 2500, "stored": 2498, "duplicate": 0, "quarantined": 2}
    assert Message.objects.count() == 2498 and Revision.objects.count() == 2498
    kept = {q.msgid: q for q in QuarantinedMail.objects.all()}
    assert set(kept) == {REFUSED, "huge@example.org"}
    assert bytes(kept[REFUSED].raw) == raws[1200] and kept[REFUSED].source == "test.mbox"
    assert "could not be stored" in kept[REFUSED].reason and "refused" in kept[REFUSED].reason
    assert "patch count over 999999999" in kept["huge@example.org"].reason


def test_reimport_counts_duplicates_and_quarantines_once():
    raws = _patches(5) + [_raw(subject="[PATCH v99999999999 1/1] x", msgid="v@example.org")]
    ingest(raws, workers=0)
    again = ingest(raws, workers=0)
    assert again.counts() == {"read": 6, "stored": 0, "duplicate": 5, "quarantined": 1}
    assert QuarantinedMail.objects.count() == 1


def test_over_long_values_are_stored_the_same_on_every_database():
    people = ", ".join(f"Person Number{i} <person{i}@example.org>" for i in range(80))
    body = (f"Message.\n\nReviewed-by: {people}\n{'Long-' * 30}by: B <b@example.org>\n"
            f"change-id: {'c' * 150}\nbase-commit: {'a' * 100}\n---\n"
            + DIFF.format(old="1" * 100, new="2" * 100))
    raw = _raw(frm=f"{'N' * 400} <{'a' * 400}@example.org>", body=body,
               extra=f"References: <{'r' * 600}@example.org>\n")
    result = ingest([raw], workers=0)
    assert result.counts()["stored"] == 1
    msg = Message.objects.get()
    assert len(msg.from_name) == 300 and len(msg.from_email) == 300
    assert {len(t.kind) for t in Trailer.objects.all()} <= set(range(61))
    rev = Revision.objects.get()
    assert rev.base_commit is None and rev.change_id == "c" * 150
    assert msg.references == []


def test_cli_prints_counts_and_fails_only_when_nothing_could_be_read(tmp_path):
    from tests.integration.test_cli_ingest import REPO, _database_url
    import os, subprocess, sys
    env = dict(os.environ, DATABASE_URL=_database_url(connection.settings_dict))
    box = tmp_path / "m.mbox"
    bad = tmp_path / "bad.mbox"
    good = _patches(3) + [_raw(subject="[PATCH 1/2147483647] x", msgid="bad@example.org")]
    box.write_bytes(b"".join(b"From x\n" + r + b"\n" for r in good))
    bad.write_bytes(b"From x\n" + good[-1].replace(b"bad@", b"bad2@") + b"\n")

    def run(path):
        return subprocess.run([sys.executable, "manage.py", "ingest", "--mbox", str(path), "--json"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    ok = run(box)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["counts"] == {"read": 4, "stored": 3, "duplicate": 0, "quarantined": 1}
    assert "bad@example.org" in ok.stderr or "patch count" in ok.stderr
    nothing = run(bad)
    assert nothing.returncode == 1 and "no mail could be read (1 quarantined)" in nothing.stderr
