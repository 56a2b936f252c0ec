"""Fetch mail threads from a public-inbox archive (lore) through b4.

This is the only module of the project that imports b4 (and liblore, the
transport b4 0.16 uses). Everything else gets plain bytes and strings.

Public API:
  parse_ref(text) -> message-id           ("<id>", "id", lore/public-inbox URLs)
  fetch_thread(msgid, lore_url) -> bytes  mboxrd of the whole thread
  search_patchid(patch_id, lore_url) -> [message-id]
  FetchError(message, temporary=...)      .temporary says whether to retry

b4 keeps its configuration and its server connection in module globals, so
every call here takes one lock, points b4 at the requested archive, and
does its work while holding it: safe for a Celery worker's threads, and no
b4 state leaks to callers.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass
from typing import Optional

import b4
import liblore
import liblore.utils
import requests
import urllib3.connection
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from untangle import msgid as msgids

__all__ = ["FetchError", "FetchLimits", "parse_ref", "fetch_thread", "search_patchid"]

# Separator line public-inbox writes in its mboxrd output; we write the same.
_MBOXRD_FROM = b"From mboxrd@z Thu Jan  1 00:00:00 1970\n"
_BODY_FROM_RE = re.compile(rb"^>*From ")

# b4 and liblore log through the "b4" logger; without a handler Python's
# last-resort handler would print their warnings. The app's logging config
# still receives them; FetchError carries what callers need.
logging.getLogger("b4").addHandler(logging.NullHandler())

_LOCK = threading.Lock()
# One liblore node (HTTP session) per (archive URL, timeout).
_NODES: dict[tuple[str, float], "liblore.LoreNode"] = {}
_MAX_NODES = 8


class FetchError(Exception):
    """A thread could not be fetched.

    temporary=True: the archive could not be asked (down, refused, timed
    out, 5xx); trying again later may work. temporary=False: the archive
    answered and the answer is final (unknown message-id, empty thread,
    a response that is not an mbox).
    """

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch may cost: an archive is outside input.

    max_bytes bounds the body as sent and, for a gzip body, its inflated
    size (inflated in a stream, so a bomb stops at the cap); wall_clock
    bounds the whole fetch in seconds, however slowly the bytes come.
    """

    max_bytes: int = 256 * 1024 * 1024
    wall_clock: float = 300.0


class _Refused(Exception):
    """The archive's answer went over a FetchLimits bound."""

    def __init__(self, reason: str, *, temporary: bool) -> None:
        super().__init__(reason)
        self.temporary = temporary


# --------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------

def parse_ref(text: str) -> str:
    """Return the bare message-id named by *text*.

    Accepts what untangle.msgid.parse does: "<msgid>", "msgid", "mid:msgid",
    percent-escapes, and any URL that carries the message-id as a path
    segment: lore list and /r/ links, patch.msgid.link, public-inbox
    thread/mbox links such as http://host:port/inbox/<msgid>/T/#u or
    .../t.mbox.gz, patchwork patch URLs. Raises ValueError otherwise.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a message reference: {text!r}")
    msgid = msgids.parse(text)
    _check_msgid(msgid, text)
    return msgid


def _check_msgid(msgid: str, original: str) -> None:
    # RFC 5322 ids are "left@right" without spaces or angle brackets; anything
    # else is almost certainly a pasted sentence or a wrong URL.
    if (
        not msgid
        or "@" not in msgid
        or msgid.startswith("@")
        or msgid.endswith("@")
        or re.search(r"[\s<>]", msgid)
    ):
        raise ValueError(f"not a message-id or message URL: {original!r}")


# --------------------------------------------------------------------------
# b4 set-up
# --------------------------------------------------------------------------


def _base_url(lore_url: str) -> str:
    """The inbox URL b4 talks to: no trailing slash, '/all' if no inbox."""
    parsed = urllib.parse.urlsplit(lore_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"lore URL must be http(s)://host[/inbox]: {lore_url!r}")
    base = lore_url.strip().rstrip("/")
    if parsed.path in ("", "/"):
        # Same rule as b4: a bare origin means the "all" inbox.
        base += "/all"
    return base


def _setup_b4(base: str, timeout: float) -> "liblore.LoreNode":
    """Point b4's globals at *base*; return b4's node for it. Hold _LOCK."""
    if not b4.get_main_config():
        # b4's config is empty until setup_config runs. Attestation off: its
        # DKIM checks do DNS lookups, and we do not judge signatures here.
        overrides = {
            "b4.attestation-policy": "off",
            "b4.attestation-check-dkim": "no",
        }
        b4.setup_config(argparse.Namespace(config=overrides))
    config = b4.get_main_config()
    config["midmask"] = base + "/%s"
    config["searchmask"] = base + "/?x=m&q=%s"
    # b4 keeps one node in b4.LORENODE and builds it lazily from midmask;
    # we hand it ours, one per archive, so switching archives never leaves
    # b4 talking to the previous one.
    b4.LORENODE = _node_for(base, timeout)
    return b4.get_lore_node()


def _node_for(base: str, timeout: float) -> "liblore.LoreNode":
    """The node for (base, timeout), built once. Hold _LOCK."""
    key = (base, timeout)
    node = _NODES.get(key)
    if node is None:
        # Built like b4.get_lore_node() (git config [liblore "<origin>"]
        # still applies) but with our timeout and no on-disk cache: b4's
        # cache lives 10 minutes in $HOME and would hide a new reply.
        node = liblore.LoreNode.from_git_config(
            base, cache_dir=None, request_timeout=(min(5.0, timeout), timeout)
        )
        node.set_user_agent("b4", b4.__VERSION__)
        session = _BoundedSession()
        session.headers["User-Agent"] = node.user_agent_plus or f"b4/{b4.__VERSION__}"
        node.set_requests_session(session)
        if len(_NODES) >= _MAX_NODES:  # a handful of archives at most
            _NODES.pop(next(iter(_NODES))).close()
        _NODES[key] = node
    return node


# --------------------------------------------------------------------------
# Bounded transport: liblore reads whole bodies and gunzips them in one go,
# with a timeout per socket read only. Every request of a node goes through
# this session instead, which reads the body under the caps first.
# --------------------------------------------------------------------------


class _TrackedConnection(urllib3.connection.HTTPConnection):
    """Registers its socket so a watchdog can shut it down mid-read."""

    registry: Optional[set] = None

    def connect(self) -> None:
        super().connect()
        if self.registry is not None:
            self.registry.add(self.sock)


class _TrackedHTTPSConnection(urllib3.connection.HTTPSConnection):
    registry: Optional[set] = None

    def connect(self) -> None:
        super().connect()
        if self.registry is not None:
            self.registry.add(self.sock)


class _TrackingAdapter(HTTPAdapter):
    def __init__(self, registry: set) -> None:
        self._registry = registry
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:  # noqa: ANN002
        super().init_poolmanager(*args, **kwargs)
        reg = self._registry
        http_conn = type("Conn", (_TrackedConnection,), {"registry": reg})
        https_conn = type("Conns", (_TrackedHTTPSConnection,), {"registry": reg})
        http_pool = type("Pool", (urllib3.connectionpool.HTTPConnectionPool,),
                         {"ConnectionCls": http_conn})
        https_pool = type("Pools", (urllib3.connectionpool.HTTPSConnectionPool,),
                          {"ConnectionCls": https_conn})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


class _BoundedSession(requests.Session):
    """A requests session whose requests obey the current FetchLimits.

    arm() sets the limits and the deadline for one fetch; at the deadline
    a timer shuts the open sockets down, which wakes a read blocked on a
    server that trickles bytes (a per-read timeout never fires for it).
    """

    def __init__(self) -> None:
        super().__init__()
        self._sockets: set = set()
        self.mount("http://", _TrackingAdapter(self._sockets))
        self.mount("https://", _TrackingAdapter(self._sockets))
        self.limits = FetchLimits()
        self.deadline = float("inf")
        self.expired = False

    def arm(self, limits: FetchLimits) -> threading.Timer:
        self.limits = limits
        self.deadline = time.monotonic() + limits.wall_clock
        self.expired = False
        timer = threading.Timer(limits.wall_clock, self._expire)
        timer.daemon = True
        timer.start()
        return timer

    def _expire(self) -> None:
        self.expired = True
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        self._sockets.clear()

    def request(self, method, url, *args, **kwargs):  # noqa: ANN001, ANN201
        kwargs["stream"] = True
        try:
            resp = super().request(method, url, *args, **kwargs)
            if method.upper() != "HEAD":
                resp._content = self._read_body(resp)  # noqa: SLF001
        except _Refused:
            raise
        except Exception:
            if self.expired or time.monotonic() > self.deadline:
                raise self._too_slow() from None
            raise
        return resp

    def _too_slow(self) -> _Refused:
        return _Refused(
            f"refused: fetch took longer than {self.limits.wall_clock:g} s "
            "(REVIEWAPP_FETCH_TIMEOUT)", temporary=True)

    def _read_body(self, resp: requests.Response) -> bytes:
        cap = self.limits.max_bytes
        body = bytearray()
        counter: Optional[_GzipCounter] = None
        for chunk in resp.raw.stream(64 * 1024, decode_content=False):
            if self.expired or time.monotonic() > self.deadline:
                raise self._too_slow()
            body += chunk
            if len(body) > cap:
                raise self._too_big("response")
            if counter is None and len(body) >= 2 and body[:2] == b"\x1f\x8b":
                counter = _GzipCounter(cap)
                chunk = bytes(body)
            if counter is not None and counter.feed(chunk) > cap:
                raise self._too_big("inflated response")
        resp.close()
        return bytes(body)

    def _too_big(self, what: str) -> _Refused:
        return _Refused(
            f"refused: {what} larger than {self.limits.max_bytes} bytes "
            "(REVIEWAPP_FETCH_MAX_BYTES)", temporary=False)


class _GzipCounter:
    """Counts the inflated size of a gzip stream fed in chunks, holding at
    most one bounded output buffer at a time (a bomb stops at the cap).
    Every member counts, as gzip.decompress reads them all."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._inflater = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> int:
        while data and self.total <= self.cap:
            if self._inflater.eof:
                data = self._inflater.unused_data + data
                self._inflater = zlib.decompressobj(wbits=31)
                continue
            try:
                out = self._inflater.decompress(data, self.cap - self.total + 1)
            except zlib.error:
                return self.total  # not gzip after all: liblore reports it
            self.total += len(out)
            data = self._inflater.unconsumed_tail
            if self._inflater.eof:
                data = self._inflater.unused_data + data
                if not data:
                    break
                self._inflater = zlib.decompressobj(wbits=31)
        return self.total


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------


def fetch_thread(msgid: str, lore_url: str, timeout: float = 30,
                 limits: Optional[FetchLimits] = None) -> bytes:
    """Return the thread containing *msgid* as mboxrd bytes.

    The archive at *lore_url* (e.g. "https://lore.kernel.org/all" or
    "http://127.0.0.1:8080/all") is asked through b4 for the thread's mbox;
    b4 de-duplicates it and keeps the messages connected to *msgid* by
    In-Reply-To/References (b4's "strict thread": the cover, its patches,
    the replies, and the messages it replies to).

    The result is an mboxrd file: each message starts with a
    "From mboxrd@z Thu Jan  1 00:00:00 1970" line, body lines matching
    ">*From " get one more ">", and each message's bytes are exactly as the
    archive served them (not re-serialised), in the archive's order.

    *msgid* may be given in any form parse_ref accepts. *timeout* bounds
    connecting (at most 5 s) and each wait for data, in seconds; *limits*
    bound the whole fetch (FetchLimits: bytes, inflated bytes, wall clock).
    Raises FetchError, or ValueError for a bad reference or URL.
    """
    msgid = parse_ref(msgid)
    base = _base_url(lore_url)
    with _LOCK:
        node = _setup_b4(base, float(timeout))
        with _bounded(node, limits or FetchLimits(), f"lore {base}"):
            raw = _get_thread_mbox(node, msgid, base)
        # The same split and de-duplication b4's get_pi_thread_by_msgid does,
        # kept as raw bytes beside the parsed copies b4 threads.
        chunks = liblore.utils.split_and_dedupe_as_bytes(raw)
        msgs = [liblore.utils.parse_message(c) for c in chunks]
        wanted = _strict_thread_ids(msgs, msgid, base)
    ids = [b4.LoreMessage.get_clean_msgid(m) for m in msgs]
    kept = [chunk for chunk, mid in zip(chunks, ids) if mid in wanted]
    return b"".join(_mboxrd_entry(chunk) for chunk in kept)


class _bounded:
    """Arm the node's session for one fetch; turn a refusal into FetchError."""

    def __init__(self, node: "liblore.LoreNode", limits: FetchLimits, where: str) -> None:
        self.session = node._get_session()  # noqa: SLF001 - ours, set in _node_for
        self.limits, self.where = limits, where

    def __enter__(self) -> None:
        self.timer = None
        if isinstance(self.session, _BoundedSession):
            self.timer = self.session.arm(self.limits)

    def __exit__(self, typ, exc, tb) -> bool:  # noqa: ANN001
        if self.timer is not None:
            self.timer.cancel()
            self.session.deadline = float("inf")
        refusal = exc
        while refusal is not None and not isinstance(refusal, _Refused):
            refusal = refusal.__cause__ or refusal.__context__
        if refusal is not None:
            raise FetchError(f"{self.where}: {refusal}", temporary=refusal.temporary) from exc
        return False


def _get_thread_mbox(node: "liblore.LoreNode", msgid: str, base: str) -> bytes:
    """The archive's t.mbox.gz for *msgid*, via b4's node (what b4 does in
    get_pi_thread_by_msgid, which returns None for every failure: we need
    to know whether a failure is worth retrying)."""
    where = f"lore {base}"
    try:
        raw = node.get_mbox_by_msgid(msgid, nocache=True)
    except Exception as ex:  # noqa: BLE001 - transport errors classified
        err = _classify(ex, where, f"no thread for <{msgid}>")
        if err is ex:
            raise
        raise err from ex
    if not raw.strip():
        raise FetchError(f"{where}: empty thread for <{msgid}>", temporary=False)
    return raw


def _classify(ex: Exception, where: str, missing: str) -> Exception:
    """Turn a transport exception into a FetchError; return others as is.

    *where* names the archive, *missing* says what a 404 means.
    """
    if isinstance(ex, liblore.RemoteError):
        status = ex.status_code
        if status is None:  # nobody answered: refused, timed out, DNS
            reason = _root_cause(ex)
            return FetchError(f"{where}: unreachable ({reason})", temporary=True)
        if status in (404, 410):
            return FetchError(f"{where}: {missing} ({status})", temporary=False)
        if status >= 500 or status in (408, 429):
            return FetchError(f"{where}: server error {status}", temporary=True)
        return FetchError(f"{where}: {missing} (HTTP {status})", temporary=False)
    if isinstance(ex, liblore.LibloreError):  # cancelled or shut down
        return FetchError(f"{where}: {ex}", temporary=True)
    if isinstance(ex, requests.RequestException):  # transfer broke mid-body
        reason = _root_cause(ex)
        return FetchError(f"{where}: transfer failed ({reason})", temporary=True)
    if isinstance(ex, (OSError, EOFError, zlib.error)):  # answer is not gzip
        return FetchError(f"{where}: garbage response ({ex})", temporary=False)
    return ex


def _root_cause(ex: BaseException) -> str:
    """A short reason ("connection refused", "timed out") for a network error.

    requests/urllib3 wrap the socket error three levels deep in long
    messages; users want the bottom line.
    """
    seen: list[BaseException] = []
    cur: Optional[BaseException] = ex
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__ or getattr(cur, "reason", None)
        if not isinstance(cur, BaseException):
            cur = None
    for err in seen:
        if isinstance(err, (requests.Timeout, TimeoutError, socket.timeout)):
            return "timed out"
    for err in reversed(seen):
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, OSError) and err.strerror:
            return err.strerror.lower()
    return str(ex)[:200]


def _strict_thread_ids(msgs: list, msgid: str, base: str) -> set[str]:
    """Message-ids b4 counts as the thread of *msgid*."""
    if not msgs:
        raise FetchError(
            f"lore {base}: garbage response for <{msgid}> (no messages)",
            temporary=False,
        )
    thread = b4.get_strict_thread(msgs, msgid) or []
    ids = {b4.LoreMessage.get_clean_msgid(m) for m in thread} - {None}
    if not ids:
        raise FetchError(
            f"lore {base}: answer for <{msgid}> does not contain it", temporary=False
        )
    return ids  # type: ignore[return-value]


def _mboxrd_entry(message: bytes) -> bytes:
    """One message as an mboxrd entry (From line, >From quoting in body)."""
    header, sep, body = message.partition(b"\n\n")
    lines = body.split(b"\n")
    quoted = [b">" + ln if _BODY_FROM_RE.match(ln) else ln for ln in lines]
    entry = header + sep + b"\n".join(quoted)
    if not entry.endswith(b"\n"):
        entry += b"\n"
    # A blank line ends each entry so the next From line starts cleanly.
    if not entry.endswith(b"\n\n"):
        entry += b"\n"
    return _MBOXRD_FROM + entry


# --------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------


def search_patchid(patch_id: str, lore_url: str, timeout: float = 30,
                   limits: Optional[FetchLimits] = None) -> list[str]:
    """Message-ids of messages whose diff has this `git patch-id --stable`.

    Uses the archive's "patchid:" search (needs an inbox indexed at level
    full), then keeps only the messages whose diff b4 computes the same
    patch-id for, so a server answering loosely cannot put unrelated mails
    in. Returns [] when nothing matches. Raises FetchError.
    """
    patch_id = patch_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{40}", patch_id):
        raise ValueError(f"not a full patch-id (40 hex digits): {patch_id!r}")
    base = _base_url(lore_url)
    with _LOCK:
        node = _setup_b4(base, float(timeout))
        with _bounded(node, limits or FetchLimits(), f"lore {base}"):
            raw = _search(node, f"patchid:{patch_id}", base)
        if raw is None:
            return []
        msgs = liblore.utils.split_and_dedupe(raw)
        found = []
        for msg in msgs:
            lmsg = b4.LoreMessage(msg)
            if lmsg.git_patch_id == patch_id and lmsg.msgid:
                found.append(lmsg.msgid)
    return found


def _search(node: "liblore.LoreNode", query: str, base: str) -> Optional[bytes]:
    """Raw mbox of the messages matching *query*; None when none match."""
    try:
        return node.get_mbox_by_query(query, full_threads=False, nocache=True)
    except Exception as ex:  # noqa: BLE001 - transport errors classified
        if isinstance(ex, liblore.RemoteError) and ex.status_code == 404:
            return None  # public-inbox's "No results found"
        err = _classify(ex, f"lore {base}", f"search {query!r} failed")
        if err is ex:
            raise
        raise err from ex


def search_since(lore_url: str, since: str, timeout: float = 30) -> list[bytes]:
    """Raw mails received since the date *since* (YYYYMMDD), through the archive's search.

    The fallback for a server that serves no git: public-inbox's `d:` search
    by date, as b4 does it. Returns [] when nothing matches. Raises FetchError.
    """
    if not re.fullmatch(r"\d{8}", since):
        raise ValueError(f"date must be YYYYMMDD: {since!r}")
    base = _base_url(lore_url)
    with _LOCK:
        node = _setup_b4(base, float(timeout))
        raw = _search(node, f"d:{since}..", base)
        if raw is None:
            return []
        return [msg.as_bytes() for msg in liblore.utils.split_and_dedupe(raw)]
