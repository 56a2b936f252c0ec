"""Message-ids: the one place that strips, brackets and links them.

Stores keep ids bare ("a@b"); mail headers carry them bracketed ("<a@b>"); pages and
digests link them on the archive at LORE_URL (the caller passes it: untangle reads no
settings).
"""
from __future__ import annotations

import re
from urllib.parse import quote

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
    m = _ANGLED.search(value or "")
    return (m.group(1) if m else (value or "").strip("<> \t\r\n")).strip()


def bracketed(msgid: str) -> str:
    """'a@b' -> '<a@b>', as a header on the wire wants it."""
    return f"<{bare(msgid)}>"


def lore_url(msgid: str, base: str = DEFAULT_LORE) -> str:
    """The message's page on a public-inbox archive (base: LORE_URL, e.g. https://lore.kernel.org/all)."""
    return f"{base.rstrip('/')}/{quote(bare(msgid), safe=_URL_SAFE)}/"
