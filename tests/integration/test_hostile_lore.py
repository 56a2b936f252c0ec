"""Hostile archives: a real socket server answers LORE_URL with a gzip bomb or
trickles bytes; each fetch ends within its bounds as a recorded refusal."""
from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib

import pytest

from untangle import lore

MSGID = "bomb@example.org"
MAIL = (b"From: A <a@example.org>\nMessage-ID: <bomb@example.org>\n"
        b"Subject: [PATCH] x\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nbody\n")


def gzip_bomb(inflated: int) -> bytes:
    """A real gzip stream of *inflated* zero bytes, built in a stream."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    out = [comp.compress(MAIL)]
    for _ in range(inflated >> 20):
        out.append(comp.compress(block))
    out.append(comp.flush())
    return b"".join(out)


class Server:
    """A plain TCP server; *answer(conn)* writes the whole HTTP reply."""

    def __init__(self, answer) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.answer = answer
        self.stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/all"

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self.answer(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def bomb_answer(body: bytes):
    def answer(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        conn.sendall(body)
    return answer


def trickle_answer(in_headers: bool):
    def answer(conn, stop):
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n"
        if not in_headers:
            conn.sendall(head + b"\r\n")
            head = gzip.compress(MAIL)[:5]
        for byte in head * 1000:
            if stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.5)
    return answer


@pytest.fixture
def server(request):
    made = []

    def make(answer):
        made.append(Server(answer))
        return made[-1]
    yield make
    for s in made:
        s.close()


def test_gzip_bomb_from_the_archive_is_refused_at_the_inflated_cap(server):
    body = gzip_bomb(64 << 20)  # ~64 KB that inflates to 64 MB
    srv = server(bomb_answer(body))
    limits = lore.FetchLimits(max_bytes=8 << 20, wall_clock=60)
    with pytest.raises(lore.FetchError) as err:
        lore.fetch_thread(MSGID, srv.url, timeout=10, limits=limits)
    assert "inflated response larger than 8388608 bytes" in str(err.value)
    assert "REVIEWAPP_FETCH_MAX_BYTES" in str(err.value)
    assert err.value.temporary is False


def test_a_bomb_in_a_second_gzip_member_is_counted_too(server):
    body = gzip.compress(MAIL) + gzip_bomb(32 << 20)
    srv = server(bomb_answer(body))
    with pytest.raises(lore.FetchError, match="inflated response larger"):
        lore.fetch_thread(MSGID, srv.url, timeout=10,
                          limits=lore.FetchLimits(max_bytes=4 << 20, wall_clock=60))


def test_a_response_under_the_caps_is_still_fetched(server):
    srv = server(bomb_answer(gzip.compress(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + MAIL)))
    data = lore.fetch_thread(MSGID, srv.url, timeout=10,
                             limits=lore.FetchLimits(max_bytes=1 << 20, wall_clock=60))
    assert b"Message-ID: <bomb@example.org>" in data


@pytest.mark.parametrize("in_headers", [True, False], ids=["headers", "body"])
def test_a_trickling_archive_is_cut_at_the_wall_clock_limit(server, in_headers):
    srv = server(trickle_answer(in_headers))
    started = time.monotonic()
    with pytest.raises(lore.FetchError) as err:
        lore.fetch_thread(MSGID, srv.url, timeout=10,
                          limits=lore.FetchLimits(max_bytes=1 << 20, wall_clock=2))
    took = time.monotonic() - started
    assert "fetch took longer than 2 s" in str(err.value)
    assert took < 8  # a per-read timeout (10 s) never fires: bytes keep coming
    # b4's lock is free again: a next fetch runs at once.
    assert lore._LOCK.acquire(timeout=1)
    lore._LOCK.release()


@pytest.mark.django_db
def test_fetch_request_records_the_refusal_of_a_bomb_at_lore_url(server, settings):
    from reviewapp.models import FetchRequest
    from reviewapp.services import fetch

    srv = server(bomb_answer(gzip_bomb(16 << 20)))
    settings.LORE_URL = srv.url
    settings.FETCH_MAX_BYTES = 2 << 20
    req = fetch.request_fetch(MSGID)
    with pytest.raises(lore.FetchError):
        fetch.run(req.id)
    req = FetchRequest.objects.get(id=req.id)
    assert req.state == FetchRequest.FAILED
    assert "inflated response larger than 2097152 bytes" in req.error
