"""untangle.lore against a real public-inbox-httpd serving the shared kernel mail.

No mocks: the archive is public-inbox itself (tests/support/public_inbox.py),
fed with the real mboxes in ../shared/lore. The last tests use tiny broken
HTTP servers because public-inbox cannot be made to answer 503 or garbage.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import re
import socket
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.msgid_shapes import MID, SHAPES
from tests.support.public_inbox import lore_mail_files, serve_inbox
from untangle import lore

from tests.support.shared import LORE, require  # noqa: E402

UFFD_V3 = LORE / "kvm-gmem-uffd-minor-v3.mbox"
V7_SPLIT = LORE / "gmem-direct-map-removal-v7-split-send.mbox"
V8_QP = LORE / "gmem-direct-map-removal-v8-qp.mbox"
FUAD_V7 = LORE / "transcribed" / "fuad-v7-cover.eml"
UFFD_V3_COVER = "20250404154352.23078-1-kalyazin@amazon.com"
FUAD_V7_COVER = "20250318161823.4005529-1-tabba@google.com"


# --------------------------------------------------------------------------
# helpers (read mbox files independently of the code under test)
# --------------------------------------------------------------------------

# In mboxrd every body line starting with "From " is quoted, so each such
# line is a separator.
_FROM_LINE = re.compile(rb"^From [^\n]*\n", re.M)


def split_mboxrd(data: bytes) -> list[bytes]:
    """Raw messages of an mboxrd file, with one level of >From unquoted."""
    parts = [p for p in _FROM_LINE.split(data) if p.strip()]
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", p) for p in parts]


def msgid_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return str(msg["Message-ID"]).strip().strip("<>")


def msgids(mbox: bytes) -> list[str]:
    return [msgid_of(m) for m in split_mboxrd(mbox)]


def subject_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\n\n", 1)[1].rstrip(b"\n")


def file_messages(path: Path) -> dict[str, bytes]:
    return {msgid_of(m): m for m in split_mboxrd(path.read_bytes())}


# --------------------------------------------------------------------------
# fixtures: one archive with all shared mail, a second small one elsewhere
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inbox(tmp_path_factory):
    with serve_inbox(lore_mail_files(require(LORE)), tmp_path_factory.mktemp("all")) as ibx:
        yield ibx


@pytest.fixture(scope="module")
def other_inbox(tmp_path_factory):
    # Another server, another inbox name, different mail: only Fuad's cover.
    with serve_inbox([FUAD_V7], tmp_path_factory.mktemp("kvm"), name="kvm") as ibx:
        yield ibx


# --------------------------------------------------------------------------
# parse_ref (pure)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("text", SHAPES)
def test_parse_ref_finds_the_message_id_in_every_form(text):
    assert lore.parse_ref(text) == MID


def test_parse_ref_keeps_an_escaped_slash_inside_the_message_id():
    url = "https://lore.kernel.org/all/a%2Fb.c@example.org/T/"
    assert lore.parse_ref(url) == "a/b.c@example.org"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "hello world", "no-at-sign", "https://lore.kernel.org/all/",
     "https://lore.kernel.org/all/?q=s:uffd", "two words@example.org", "@example.org"],
)
def test_parse_ref_rejects_what_is_not_a_message_reference(text):
    with pytest.raises(ValueError, match="message"):
        lore.parse_ref(text)


# --------------------------------------------------------------------------
# fetch_thread against public-inbox-httpd
# --------------------------------------------------------------------------


def test_cover_msgid_fetches_cover_and_all_six_patches(inbox):
    assert len(file_messages(UFFD_V3)) == 7  # the reader below is sound
    mbox = lore.fetch_thread(UFFD_V3_COVER, inbox.url)
    got = msgids(mbox)
    assert sorted(got) == sorted(file_messages(UFFD_V3))  # cover + 6 (+ replies in file)
    subjects = [subject_of(m) for m in split_mboxrd(mbox)]
    assert sum("/6]" in s for s in subjects) == 7
    assert any("0/6]" in s for s in subjects)


@pytest.mark.parametrize(
    "form",
    [
        "{mid}",
        "<{mid}>",
        "{url}/{mid}/T/#u",
        "{url}/{qmid}/t.mbox.gz",
        "https://lore.kernel.org/r/{mid}",
        "https://patch.msgid.link/{mid}",
        "https://lore.kernel.org/linux-kselftest/{mid}/",
    ],
)
def test_every_reference_form_fetches_the_same_thread(inbox, form):
    qmid = urllib.parse.quote(UFFD_V3_COVER)
    ref = form.format(mid=UFFD_V3_COVER, url=inbox.url, qmid=qmid)
    got = msgids(lore.fetch_thread(ref, inbox.url))
    assert sorted(got) == sorted(file_messages(UFFD_V3))


@pytest.mark.parametrize("suffix", ["", "/", "/all", "/all/"])
def test_archive_url_may_be_a_bare_origin_or_end_in_a_slash(inbox, suffix):
    url = f"http://127.0.0.1:{inbox.port}{suffix}"  # bare origin means /all
    got = msgids(lore.fetch_thread(UFFD_V3_COVER, url))
    assert sorted(got) == sorted(file_messages(UFFD_V3))


def test_patch_msgid_fetches_the_whole_thread(inbox):
    mbox = lore.fetch_thread("20250404154352.23078-5-kalyazin@amazon.com", inbox.url)
    assert sorted(msgids(mbox)) == sorted(file_messages(UFFD_V3))


def test_second_git_send_email_run_is_fetched_with_the_first(inbox):
    # v7 was sent in two runs; patch 04 (msgid stem restarts at -1) replies to 03.
    mbox = lore.fetch_thread(_first_of_second_run(), inbox.url)
    assert sorted(msgids(mbox)) == sorted(file_messages(V7_SPLIT))
    assert len(msgids(mbox)) == 13


def _first_of_second_run() -> str:
    ids = [m for m in file_messages(V7_SPLIT) if m.startswith("20250924152214.7292-1")]
    assert len(ids) == 1
    return ids[0]


def test_message_bodies_are_served_byte_exact(inbox):
    # Quoted-printable iso-8859-1 bodies must reach the parser untouched.
    original = file_messages(V8_QP)
    cover = next(m for m, raw in original.items() if "00/13]" in subject_of(raw))
    mbox = lore.fetch_thread(cover, inbox.url)
    fetched = {msgid_of(m): m for m in split_mboxrd(mbox)}
    assert set(fetched) == set(original)
    for mid, raw in original.items():
        assert body_of(fetched[mid]) == body_of(raw), mid


def test_unknown_msgid_is_a_permanent_error(inbox):
    with pytest.raises(lore.FetchError) as err:
        lore.fetch_thread("no-such-message@example.org", inbox.url)
    assert err.value.temporary is False
    assert "no-such-message@example.org" in str(err.value)
    assert "404" in str(err.value) and inbox.url in str(err.value)


def test_stopped_server_is_a_temporary_error(tmp_path):
    with serve_inbox([FUAD_V7], tmp_path) as ibx:
        assert msgids(lore.fetch_thread(FUAD_V7_COVER, ibx.url)) == [FUAD_V7_COVER]
        ibx.stop()
        with pytest.raises(lore.FetchError) as err:
            lore.fetch_thread(FUAD_V7_COVER, ibx.url)
    assert err.value.temporary is True
    assert "connection refused" in str(err.value)


def test_two_archives_in_one_process_each_answer_from_their_own_mail(inbox, other_inbox):
    # Alternate: a b4 node left pointing at the previous URL would fail here.
    for _ in range(2):
        assert sorted(msgids(lore.fetch_thread(UFFD_V3_COVER, inbox.url))) == sorted(
            file_messages(UFFD_V3)
        )
        other = lore.fetch_thread(FUAD_V7_COVER, other_inbox.url)
        assert msgids(other) == [FUAD_V7_COVER]
        with pytest.raises(lore.FetchError) as err:
            lore.fetch_thread(UFFD_V3_COVER, other_inbox.url)
        assert err.value.temporary is False and other_inbox.url in str(err.value)


def test_concurrent_fetches_from_two_archives_do_not_mix(inbox, other_inbox):
    jobs = [(UFFD_V3_COVER, inbox.url), (FUAD_V7_COVER, other_inbox.url)] * 6
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda j: msgids(lore.fetch_thread(*j)), jobs))
    for (mid, _url), got in zip(jobs, results):
        assert mid in got
        assert len(got) == (7 if mid == UFFD_V3_COVER else 1)


def test_a_reply_that_arrives_later_is_in_the_next_fetch(tmp_path):
    with serve_inbox([UFFD_V3], tmp_path) as ibx:
        before = msgids(lore.fetch_thread(UFFD_V3_COVER, ibx.url))
        reply = (
            b"From: Reviewer <reviewer@example.org>\n"
            b"To: kvm@vger.kernel.org\n"
            b"Subject: Re: [PATCH v3 4/6] KVM: guest_memfd: add support for"
            b" userfaultfd minor\n"
            b"Date: Mon, 07 Apr 2025 10:00:00 +0000\n"
            b"Message-ID: <late-reply-1@example.org>\n"
            b"In-Reply-To: <20250404154352.23078-5-kalyazin@amazon.com>\n"
            b"References: <" + UFFD_V3_COVER.encode() + b">"
            b" <20250404154352.23078-5-kalyazin@amazon.com>\n"
            b"\n"
            b"From the look of it this is fine.\n"
            b">From a quoted line too.\n"
        )
        ibx.add_message(reply)
        after = lore.fetch_thread(UFFD_V3_COVER, ibx.url)
    assert len(before) == 7
    assert sorted(msgids(after)) == sorted(before + ["late-reply-1@example.org"])
    # mboxrd quoting: body lines starting with (>*)From get one more '>'.
    assert b"\n>From the look of it" in after
    assert b"\n>>From a quoted line" in after
    late = next(m for m in split_mboxrd(after) if b"late-reply-1@" in m)
    assert body_of(late) == b"From the look of it this is fine.\n>From a quoted line too."


def test_fetching_prints_nothing_on_stdout(inbox, capfd):
    lore.fetch_thread(UFFD_V3_COVER, inbox.url)
    with pytest.raises(lore.FetchError):
        lore.fetch_thread("absent@example.org", inbox.url)
    out, _err = capfd.readouterr()
    assert out == ""


def test_fetch_is_fast(inbox):
    lore.fetch_thread(UFFD_V3_COVER, inbox.url)  # warm up the server
    start = time.perf_counter()
    for _ in range(10):
        lore.fetch_thread(UFFD_V3_COVER, inbox.url)
    per_fetch = (time.perf_counter() - start) / 10
    print(f"\nfetch_thread uffd-minor v3 (7 msgs, 62 KB): {per_fetch * 1000:.1f} ms")
    assert per_fetch < 2.0


# --------------------------------------------------------------------------
# search_patchid
# --------------------------------------------------------------------------


def git_patch_id(raw: bytes) -> str:
    out = subprocess.run(
        ["git", "patch-id", "--stable"], input=raw, capture_output=True, check=True
    ).stdout
    return out.split()[0].decode()


def test_search_patchid_finds_the_patch_mail(inbox):
    mid = "20250404154352.23078-3-kalyazin@amazon.com"
    pid = git_patch_id(file_messages(UFFD_V3)[mid])
    assert lore.search_patchid(pid, inbox.url) == [mid]


def test_search_patchid_with_no_match_is_empty(inbox):
    assert lore.search_patchid("0" * 40, inbox.url) == []


# --------------------------------------------------------------------------
# broken servers (public-inbox cannot be made to misbehave)
# --------------------------------------------------------------------------


class _Broken(http.server.BaseHTTPRequestHandler):
    status = 503
    body = b"overloaded\n"

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_HEAD = do_GET
    do_POST = do_GET

    def log_message(self, *args):
        pass


def _serve(handler):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serve = threading.Thread(
        target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    serve.start()
    return srv


@pytest.mark.parametrize(
    "status,body,temporary",
    [
        (503, b"overloaded\n", True),
        (500, b"oops\n", True),
        (200, b"<html>not an mbox</html>", False),
        (403, b"forbidden\n", False),
    ],
)
def test_broken_server_answers_are_classified(status, body, temporary):
    handler = type("H", (_Broken,), {"status": status, "body": body})
    srv = _serve(handler)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/all"
        with pytest.raises(lore.FetchError) as err:
            lore.fetch_thread(UFFD_V3_COVER, url, timeout=5)
    finally:
        srv.shutdown()
        srv.server_close()
    assert err.value.temporary is temporary
    assert url in str(err.value)


def test_server_that_never_answers_times_out_as_temporary():
    # Listening socket nobody reads: connect succeeds, the answer never comes.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/all"
        start = time.monotonic()
        with pytest.raises(lore.FetchError) as err:
            lore.fetch_thread(UFFD_V3_COVER, url, timeout=0.5)
        elapsed = time.monotonic() - start
    finally:
        sock.close()
    assert err.value.temporary is True
    assert "timed out" in str(err.value)
    assert elapsed < 5
