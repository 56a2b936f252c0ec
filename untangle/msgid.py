"""Message-ids: the one place that parses, strips, brackets and links them.

Stores keep ids bare ("a@b"); mail headers carry them bracketed ("<a@b>"); pages and
digests link them on the archive at LORE_URL (the caller passes it: untangle reads no
settings). What people and mails write to name a message ("<a@b>", "mid:a@b",
"a%40b", a lore URL) goes through ``parse``; header values through ``from_header``,
which decodes nothing (a '%' in a real Message-ID is part of it).
"""
from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

_ANGLED = re.compile(r"<([^<>\s]+)>")
# Characters a message-id keeps unescaped in a public-inbox URL path segment.
_URL_SAFE = "@+=-._~!$&()*,;:"
DEFAULT_LORE = "https://lore.kernel.org/all"


def bare(text: str) -> str:
    """'<a@b>' / ' a@b ' / ' <a@b> ' -> 'a@b' (whitespace and one pair of angle brackets)."""
    text = (text or "").strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text.strip()


def from_header(value: str) -> str:
    """The id in a Message-ID / In-Reply-To header value: the first <...>, else the value bare."""
    value = (value or "").strip()
    m = _ANGLED.search(value)
    return (m.group(1) if m else value.strip("<> \t\r\n")).strip()


def all_in_header(value: str) -> list[str]:
    """Every <...> id in a References header value, in order."""
    return _ANGLED.findall(value or "")


_PREFIX = re.compile(r"^(?:mid:|id:|rfc822msgid:)", re.IGNORECASE)  # RFC 2392, notmuch, Gmail
_HTTP = re.compile(r"^https?://", re.IGNORECASE)
_URL_TAIL = ".,;:)]>'\""  # punctuation after a URL in prose, not part of it


def parse(text: str) -> str:
    """The bare id a reference names; "" when a URL names none.

    Accepts "a@b", "<a@b>", surrounding whitespace, "mid:" / "id:" / "rfc822msgid:"
    prefixes, percent-escapes ("a%40b"), and URLs that carry the id as a path segment
    (see ``from_url``). Validating the result is the caller's business.
    """
    text = (text or "").strip()
    if _HTTP.match(text):
        return from_url(text) or ""
    return bare(unquote(_PREFIX.sub("", text)))


def from_url(url: str) -> str | None:
    """The id a public-inbox style URL names, or None.

    lore (https://lore.kernel.org/<list>/<id>/, /T/#u, /t.mbox.gz, /raw, /r/<id>),
    patch.msgid.link, patchwork and any archive with the id as a path segment: the
    first segment holding an id once percent-decoded. Segments are split before
    decoding, so an escaped '/' (%2F) stays inside the id; fragments (#m..., #r)
    point inside the same thread and are ignored.
    """
    try:
        path = urlsplit(url.rstrip(_URL_TAIL)).path
    except ValueError:
        return None
    for segment in path.split("/"):
        candidate = bare(unquote(segment))
        local, at, domain = candidate.partition("@")
        if at and local and domain and not re.search(r"[\s<>]", candidate):
            return candidate
    return None


def bracketed(msgid: str) -> str:
    """'a@b' -> '<a@b>', as a header on the wire wants it."""
    return f"<{bare(msgid)}>"


def lore_url(msgid: str, base: str = DEFAULT_LORE) -> str:
    """The message's page on a public-inbox archive (base: LORE_URL, e.g. https://lore.kernel.org/all)."""
    return f"{base.rstrip('/')}/{quote(bare(msgid), safe=_URL_SAFE)}/"
