"""Parse one raw mail into plain data: who, when, what it replies to, and,
for a patch, its commit message, diff, files, trailers and patch-id."""
import base64
import email
import email.policy
import os
import pickle
import queue
import quopri
import re
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Iterable, Iterator

from . import deps, msgid as msgids, patchid, subject as subjects

_TRAILER = re.compile(
    r"^([A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-by|Fixes|Link|Closes|Cc):\s*(.+?)\s*$", re.M)
_TAG_LINE = re.compile(r"^(base-commit|change-id|prerequisite-[a-z-]+):\s*(\S.*?)\s*$", re.M | re.I)
# quilt (and diff -u) patches have no "diff --git" line: "--- dir.orig/f" then "+++ dir/f".
_DIFF_START = re.compile(r"^(diff --git |Index: |--- (a/|/dev/null)|--- [^\s-][^\n]*\n\+\+\+ \S)", re.M)
_IN_BODY = re.compile(r"^(From|Subject|Date):[ \t]*(.*)$")
_LIST_ID = re.compile(r"<([^<>]+)>")

PATCH, COVER, REPLY, OTHER = "patch", "cover", "reply", "other"


class MailError(ValueError):
    """A mail refused; .raw (when known) is its bytes, for the quarantine."""
    raw: bytes | None = None


# Widths of the columns a mail is stored in (reviewapp/models.py). Values are
# bounded here, when parsed, so SQLite (which ignores varchar lengths) and
# PostgreSQL (which refuses longer values) store the same thing.
MSGID_MAX = 500
NAME_MAX = 300  # names and addresses
KIND_MAX = 60  # trailer kinds
TAG_MAX = 200  # change-id and other tag values
BLOB_MAX = 64
LIST_MAX = 200
TRAILER_VALUE_MAX = 1000  # part of a unique index: PostgreSQL caps btree entries near 2.7 kB


@dataclass(frozen=True)
class Limits:
    """What one mail may cost; beyond it the mail is refused with the reason."""
    max_bytes: int = 10 * 1024 * 1024
    max_files: int = 2000  # files changed by one patch
    max_hunks: int = 20000  # hunks in one patch
    max_number: int = 1000  # n and N of [PATCH n/N]
    max_version: int = 1000  # vN


DEFAULT_LIMITS = Limits()


@dataclass
class FileChange:
    path: str
    old_path: str | None
    old_blob: str | None
    new_blob: str | None
    status: str  # modified, added, deleted, renamed, copied


@dataclass
class Trailer:
    kind: str
    name: str
    email: str
    value: str


@dataclass
class Mail:
    msgid: str
    subject: str
    title: str
    version: int
    number: int | None
    total: int | None
    rfc: bool
    prefixes: list[str]
    kind: str
    from_name: str
    from_email: str
    date: datetime | None
    in_reply_to: str | None
    references: list[str]
    lists: list[str]
    body: str
    author_name: str = ""
    author_email: str = ""
    commit_message: str = ""
    diff: str = ""
    patch_id: str | None = None
    files: list[FileChange] = field(default_factory=list)
    trailers: list[Trailer] = field(default_factory=list)
    tags: dict[str, list[str]] = field(default_factory=dict)

    @property
    def author(self) -> str:
        return format_address(self.author_name or self.from_name, self.author_email or self.from_email)

    def to_dict(self) -> dict:
        return asdict(self)


_ATOMS = r"[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*"
_WORD = r"[^\s()<>@,:;.\"\[\]\\]+"
_SIMPLE_ADDRESS = re.compile(rf"(?:((?:{_WORD} )*{_WORD}) ?|\"([^\"\\\\\r\n]*)\" ?)?<({_ATOMS}@{_ATOMS})>"
                             rf"|({_ATOMS}@{_ATOMS})")


def parse_address(value: str) -> tuple[str, str]:
    """email.utils.parseaddr(), with a fast path for the plain "Name <addr>" forms
    (parseaddr costs ~50 us a call; a kernel mail has one or two)."""
    m = _SIMPLE_ADDRESS.fullmatch(value)
    if m is None:
        return parseaddr(value)
    name, quoted, addr, bare = m.groups()
    return ("", bare) if bare is not None else (name or quoted or "", addr)


def format_address(name: str, addr: str) -> str:
    return f"{name} <{addr}>" if name else f"<{addr}>"


def _header(msg, name: str) -> str:
    raw = msg.get(name)
    if raw is None:
        return ""
    if "=?" not in str(raw):
        return " ".join(str(raw).split())
    try:
        return " ".join(str(make_header(decode_header(str(raw)))).split())
    except (UnicodeError, LookupError, email.errors.HeaderParseError, email.errors.CharsetError):
        return " ".join(str(raw).split())


def _decode_part(part) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        inner = part.get_payload()
        return inner if isinstance(inner, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _body(msg) -> str:
    if not msg.is_multipart():
        return _decode_part(msg)
    texts, patches = [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        name = (part.get_filename() or "").lower()
        if ctype in ("text/x-patch", "text/x-diff") or name.endswith((".patch", ".diff")):
            patches.append(_decode_part(part))
        elif ctype == "text/plain" and not texts:
            texts.append(_decode_part(part))
    return "\n".join(texts + patches)


def _date(msg) -> datetime | None:
    raw = msg.get("Date")
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


_ADDRESS = re.compile(r"[\w.+=-]+@[\w-]+(?:\.[\w-]+)+")


@lru_cache(maxsize=8192)
def _looks_like_list(addr: str) -> bool:
    local, _, domain = addr.partition("@")
    return (domain.startswith("lists.") or ".lists." in domain or domain in _LIST_HOSTS
            or local.startswith("linux-"))


_LIST_HOSTS = {"vger.kernel.org", "kvack.org", "lists.infradead.org", "lists.linux.dev",
               "googlegroups.com", "lists.freedesktop.org", "nongnu.org", "lists.ozlabs.org"}


def _lists(msg) -> list[str]:
    """Lists the mail went to: List-Id first, then list-like To/Cc addresses.

    A regex over the raw headers, not getaddresses(): kernel mails carry Cc
    lines of dozens of people and the full address parser costs milliseconds.
    """
    found = []
    if m := _LIST_ID.search(str(msg.get("List-Id") or "")):
        found.append(m.group(1).lower())
    raw = f"{msg.get('To') or ''},{msg.get('Cc') or ''}"
    for addr in _ADDRESS.findall(raw):
        addr = addr.lower()
        if addr not in found and _looks_like_list(addr):
            found.append(addr)
    return found


_FOLD = re.compile(r"\n[ \t]+")
_HEADER_LINE = re.compile(r"^([^:\n ]+):([^\n]*)", re.M)


class _Headers:
    """Unfolded headers, first occurrence wins; enough of Message.get() for us."""

    def __init__(self, block: bytes):
        # CRLF to LF first: a pattern starting with "\\r?" is scanned slowly.
        text = _FOLD.sub(" ", block.decode("utf-8", errors="replace").replace("\r\n", "\n"))
        # Reversed, so that the first occurrence of a name is the one kept.
        self.values: dict[str, str] = {name.lower(): value
                                       for name, value in reversed(_HEADER_LINE.findall(text))}

    def get(self, name: str, default=None):
        value = self.values.get(name.lower())
        return default if value is None else value.strip()


def _fast_body(headers: _Headers, payload: bytes) -> str | None:
    """Decode a single-part body; None sends the mail down the full parser."""
    ctype = (headers.get("Content-Type") or "text/plain").lower()
    if not ctype.startswith("text/"):
        return None
    cte = (headers.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    if cte == "quoted-printable":
        payload = quopri.decodestring(payload)
    elif cte == "base64":
        try:
            payload = base64.b64decode(payload)
        except ValueError:
            return None
    elif cte not in ("7bit", "8bit", "binary"):
        return None
    m = re.search(r'charset="?([\w.:-]+)', ctype)
    try:
        return payload.decode(m.group(1) if m else "utf-8", errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _blank_line(raw: bytes) -> tuple[int, int] | None:
    """Where the first empty line (\\r?\\n\\r?\\n) starts and ends; bytes.find, not a
    regex: a pattern that starts with an optional character is scanned slowly."""
    hits = [(i, 2) for i in [raw.find(b"\n\n")] if i >= 0]
    end = hits[0][0] + 3 if hits else len(raw)
    hits += [(i, 3) for i in [raw.find(b"\n\r\n", 0, end)] if i >= 0]
    if not hits:
        return None
    i, width = min(hits)
    return (i - 1 if i and raw[i - 1] == 13 else i), i + width


def _split(raw: bytes):
    """Headers and decoded body, with a fast path for the common single-part mail."""
    sep = _blank_line(raw)
    block, payload = (raw[:sep[0]], raw[sep[1]:]) if sep else (raw, b"")
    headers = _Headers(block)
    body = _fast_body(headers, payload)
    if body is None:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        return msg, _body(msg)
    return headers, body


def parse(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Mail:
    if len(raw) > limits.max_bytes:  # an mbox.Cut knows the size it had before it was cut
        raise MailError(f"mail of {getattr(raw, 'size', len(raw))} bytes is over the limit of {limits.max_bytes}")
    # NUL is never valid in mail text, and PostgreSQL text refuses it.
    msg, body = _split(raw.replace(b"\x00", b""))
    msgid = msgids.from_header(_header(msg, "Message-ID"))
    if not msgid:
        raise MailError("mail has no Message-ID header")
    if len(msgid) > MSGID_MAX:
        # Cut, it could name another mail: refused instead.
        raise MailError(f"Message-ID of {len(msgid)} characters (at most {MSGID_MAX})")
    raw_subject = _header(msg, "Subject")
    subj = subjects.parse(raw_subject)
    _check_counts(subj, limits)
    from_name, from_email = parse_address(_header(msg, "From"))
    refs = [r for r in msgids.all_in_header(str(msg.get("References") or "")) if len(r) <= MSGID_MAX]
    in_reply_to = msgids.from_header(str(msg.get("In-Reply-To") or ""))
    if not in_reply_to or len(in_reply_to) > MSGID_MAX:
        in_reply_to = refs[-1] if refs else None
    body = body.replace("\r\n", "\n").replace("\x00", "")
    mail = Mail(
        msgid=msgid, subject=raw_subject, title=subj.title, version=subj.version,
        number=subj.number, total=subj.total, rfc=subj.rfc, prefixes=subj.prefixes,
        kind=OTHER, from_name=from_name[:NAME_MAX], from_email=from_email.lower()[:NAME_MAX],
        date=_date(msg), in_reply_to=in_reply_to or None, references=refs,
        lists=[name for name in _lists(msg) if len(name) <= LIST_MAX], body=body)
    _classify(mail, subj)
    _check_patch(mail, limits)
    return mail


def _check_counts(subj: subjects.Subject, limits: Limits) -> None:
    """[PATCH v99999999999 1/1] or [PATCH 1/2147483647]: no real posting, and a
    count that size would overflow a column or size a range()."""
    if subj.version > limits.max_version:
        raise MailError(f"subject says version {_count(subj.version)}, "
                        f"over the limit of {limits.max_version}")
    for what, value in (("patch number", subj.number), ("patch count", subj.total)):
        if value is not None and value > limits.max_number:
            raise MailError(f"subject says {what} {_count(value)}, over the limit of {limits.max_number}")


def _count(value: int) -> str:
    return f"over {subjects.TOO_BIG - 1}" if value >= subjects.TOO_BIG else str(value)


def _check_patch(mail: Mail, limits: Limits) -> None:
    if len(mail.files) > limits.max_files:
        raise MailError(f"patch changes {len(mail.files)} files, over the limit of {limits.max_files}")
    hunks = mail.diff.count("\n@@ ") + mail.diff.startswith("@@ ")
    if hunks > limits.max_hunks:
        raise MailError(f"patch has {hunks} hunks, over the limit of {limits.max_hunks}")


def _classify(mail: Mail, subj: subjects.Subject) -> None:
    mail.tags = read_tags(_unquoted(mail.body))
    if subj.is_reply:
        mail.kind = REPLY
    elif _DIFF_START.search(mail.body) and subj.number != 0 and (
            subj.has_patch_prefix or not mail.in_reply_to):
        mail.kind = PATCH
        _read_patch(mail)
        return
    elif subj.is_cover or (subj.has_patch_prefix and subj.number is None and not mail.in_reply_to):
        mail.kind = COVER if subj.number == 0 else OTHER
    elif "PULL" in subj.prefixes and not mail.in_reply_to:
        # A pull request is a posting with no patches: a cover with 0 received,
        # so what it states (Supersedes:, base) still counts.
        mail.kind = COVER
    elif mail.in_reply_to:
        mail.kind = REPLY
    mail.trailers = read_trailers(_unquoted(mail.body))


def _unquoted(text: str) -> str:
    if not text.startswith(">") and "\n>" not in text:
        return text
    return "\n".join(line for line in text.split("\n") if not line.startswith(">"))


def read_tags(text: str) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for key, value in _TAG_LINE.findall(text):
        if len(key) <= KIND_MAX and len(value) <= TAG_MAX:  # longer names no real tag
            tags.setdefault(key.lower(), []).append(value)
    return tags


def read_trailers(text: str) -> list[Trailer]:
    found = []
    for kind, value in _TRAILER.findall(text):
        # "Reviewed-by: A <a>, B <b>, C <c>, ..." once overflowed varchar(300).
        name, addr = person(value)
        found.append(Trailer(kind=_canon_kind(kind)[:KIND_MAX], name=name[:NAME_MAX],
                             email=addr[:NAME_MAX], value=value[:TRAILER_VALUE_MAX]))
    return found


_EMAIL = re.compile(r"<?([^<>\s\"]+@[^<>\s\"]+?)>?(?:\s|$)")
_BRACKETED = re.compile(r"<([^<>\s\"]+@[^<>\s\"]+)>")  # "Name <a@b>." still names a@b


def person(value: str) -> tuple[str, str]:
    """Name and address from a trailer value, forgiving stray quotes and brackets."""
    m = _BRACKETED.search(value) or _EMAIL.search(value + " ")
    if not m:
        return value.strip(), ""
    name = value[:m.start()].replace('"', "").strip(" <")
    return " ".join(name.split()), m.group(1).lower()


def _canon_kind(kind: str) -> str:
    return "-".join(part.capitalize() if i == 0 else part.lower()
                    for i, part in enumerate(kind.split("-")))


def _read_patch(mail: Mail) -> None:
    text = mail.body
    header_lines, text = _strip_in_body_headers(text)
    if "From" in header_lines:
        name, addr = parse_address(header_lines["From"])
        mail.author_name, mail.author_email = name[:NAME_MAX], addr.lower()[:NAME_MAX]
    m = _DIFF_START.search(text)
    message, diff = text[:m.start()], text[m.start():]
    message = re.split(r"^---[ \t]*$", message, maxsplit=1, flags=re.M)[0]
    mail.commit_message = message.strip("\n")
    mail.diff = _strip_signature(diff)
    mail.files = parse_files(mail.diff)
    mail.trailers = read_trailers(mail.commit_message)
    mail.patch_id = patchid.patch_id(mail.diff)


def _strip_in_body_headers(text: str) -> tuple[dict[str, str], str]:
    # git am honours "From:", "Subject:" and "Date:" as the first lines of the body.
    lines = text.lstrip("\n").split("\n")
    found: dict[str, str] = {}
    i = 0
    # Like git mailinfo, blank lines between in-body headers are skipped.
    while i < len(lines):
        if m := _IN_BODY.match(lines[i]):
            found.setdefault(m.group(1), m.group(2).strip())
        elif lines[i].strip() or not found:
            break
        i += 1
    if not found:
        return {}, text
    if "From" in found:
        found["From"] = str(make_header(decode_header(found["From"])))
    return found, "\n".join(lines[i:])


def _strip_signature(diff: str) -> str:
    # git send-email ends with "-- \n2.43.0"; the diff ends before it.
    parts = re.split(r"^-- ?\n(?=[^\n]*\n?\Z|[\d.]+)", diff, maxsplit=1, flags=re.M)
    out = parts[0]
    return out if out.endswith("\n") else out + "\n"


_DIFF_GIT = re.compile(r"^diff --git (?:\"?a/)?(.+?)\"? (?:\"?b/)?(.+?)\"?$")


# The only lines parse_files() reads; the hunks in between are skipped in C.
_FILE_HEADER = re.compile(r"^(?:diff --git |index |new file mode|deleted file mode|rename from |"
                          r"rename to |copy from ).*", re.M)


def parse_files(diff: str) -> list[FileChange]:
    files: list[FileChange] = []
    current: FileChange | None = None
    for m in _FILE_HEADER.finditer(diff):
        line = m.group(0)
        if line.startswith("diff --git "):
            m = _DIFF_GIT.match(line)
            old, new = (m.group(1), m.group(2)) if m else (None, line[11:])
            current = FileChange(path=new, old_path=old, old_blob=None, new_blob=None, status="modified")
            files.append(current)
        elif current is None:
            continue
        elif line.startswith("index ") and ".." in line:
            pre, _, post = line[6:].partition("..")
            current.old_blob, current.new_blob = pre[:BLOB_MAX], post.split(" ")[0][:BLOB_MAX]
        elif line.startswith("new file mode"):
            current.status = "added"
        elif line.startswith("deleted file mode"):
            current.status = "deleted"
        elif line.startswith("rename from "):
            current.status, current.old_path = "renamed", line[12:]
        elif line.startswith("rename to "):
            current.path = line[10:]
        elif line.startswith("copy from "):
            current.status, current.old_path = "copied", line[10:]
    if not files:
        files = _unified_files(diff)
    for change in files:
        if change.status not in ("renamed", "copied") and change.old_path == change.path:
            change.old_path = None
    return files


_UNIFIED = re.compile(r"^--- (\S+)[^\n]*\n\+\+\+ (\S+)", re.M)


def _unified_files(diff: str) -> list[FileChange]:
    """Files of a diff without "diff --git" lines (quilt, diff -u): each "---"/"+++" pair,
    its first path component dropped as `patch -p1` does."""
    out = []
    for old, new in _UNIFIED.findall(diff):
        old_path, new_path = (None if p == "/dev/null" else p.split("/", 1)[-1] for p in (old, new))
        status = "added" if old_path is None else "deleted" if new_path is None else "modified"
        out.append(FileChange(path=new_path or old_path, old_path=old_path, old_blob=None, new_blob=None,
                              status=status))
    return out


# --- parsing a stream in child processes ----------------------------------------
# Parsing costs about half a millisecond a mail, as much as storing it; a
# child process parses while the caller stores. Children are plain
# subprocesses (not multiprocessing): they never re-import the caller's main
# module, never inherit its database connections, and may be started from a
# daemonic process such as a Celery prefork worker.

def parse_or_error(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Mail | MailError:
    try:
        return parse(raw, limits)
    except MailError as exc:
        exc.raw = raw[:limits.max_bytes]  # kept for the quarantine, bounded
        return exc


def stated_edges(mail: Mail) -> list | None:
    """The dependency edges a cover letter or reply states in its body
    (untangle.deps.discover_text_edges); None for a patch, whose body is
    mostly diff and is read only when it turns out to speak for its posting."""
    if mail.kind == PATCH:
        return None
    return deps.discover_text_edges(mail.msgid, mail.body, is_reply=mail.kind != COVER)


def _parse_item(raw: bytes, edges: bool, limits: Limits = DEFAULT_LIMITS):
    mail = parse_or_error(raw, limits)
    if edges and not isinstance(mail, MailError):
        return mail, stated_edges(mail)
    return mail


def parse_stream(raws: Iterable[bytes], workers: int = 1, chunk: int = 100,
                 window: int = 16, *, edges: bool = False,
                 limits: Limits = DEFAULT_LIMITS) -> Iterator:
    """parse_or_error() over raws, in input order, using `workers` child processes
    (0: in this process). At most `window` chunks of `chunk` mails are read
    ahead of the consumer, so memory stays flat in the length of the stream.
    An exception raised by raws itself is raised here, in its place.
    With edges=True a parsed mail comes as (mail, stated_edges(mail)): that
    work is done in the children too."""
    if workers < 1:
        yield from (_parse_item(raw, edges, limits) for raw in raws)
        return
    pool = _ParserPool(workers)
    try:
        yield from pool.run(iter(raws), chunk, window, (edges, limits))
    finally:
        pool.close()


_CHILD = ("import sys; sys.path.insert(0, {root!r}); "
          "from untangle.mail import _serve_parser; _serve_parser()")


def _take(raws: Iterator[bytes], size: int) -> tuple[list[bytes], BaseException | None]:
    """Up to size raws, and the exception that cut them short, if any."""
    part: list[bytes] = []
    try:
        for raw in raws:
            part.append(raw)
            if len(part) >= size:
                break
    except Exception as exc:
        return part, exc
    return part, None


class _ParserPool:
    def __init__(self, workers: int):
        root = str(Path(__file__).resolve().parents[1])
        self.procs = [subprocess.Popen([sys.executable, "-c", _CHILD.format(root=root)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                      for _ in range(workers)]
        self.stop = threading.Event()
        self.feeder: threading.Thread | None = None
        self.finished = False

    def run(self, raws: Iterator[bytes], size: int, window: int, edges: tuple) -> Iterator:
        # A feeder thread writes chunks round-robin and queues a ticket per
        # chunk; this thread reads the results back in ticket order. The
        # bounded ticket queue is the read-ahead window.
        tickets: queue.Queue = queue.Queue(maxsize=window)
        self.feeder = threading.Thread(target=self._feed, args=(raws, size, edges, tickets),
                                       daemon=True)
        self.feeder.start()
        while True:
            ticket = tickets.get()
            if ticket is None:
                self.finished = True
                return
            if isinstance(ticket, BaseException):
                raise ticket
            try:
                results = pickle.load(ticket.stdout)
            except EOFError:
                raise ChildProcessError(f"mail parser process {ticket.pid} exited") from None
            if isinstance(results, BaseException):
                raise results
            yield from results

    def _feed(self, raws: Iterator[bytes], size: int, edges: tuple, tickets: queue.Queue) -> None:
        n = 0
        while not self.stop.is_set():
            part, error = _take(raws, size)
            if part:
                proc = self.procs[n % len(self.procs)]
                try:
                    pickle.dump((edges, part), proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    proc.stdin.flush()
                except OSError as exc:  # the child died; the consumer hears of it
                    self._put(tickets, exc)
                    return
                self._put(tickets, proc)
                n += 1
            if error is not None:  # the input's own error, after the mails before it
                self._put(tickets, error)
                return
            if len(part) < size:
                break
        self._put(tickets, None)

    def _put(self, tickets: queue.Queue, item) -> None:
        while not self.stop.is_set():
            try:
                tickets.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.stop.set()
        for proc in self.procs:
            if not self.finished:
                proc.kill()  # abandoned early: the rest of the input is not wanted
        if self.feeder is not None:
            self.feeder.join()
        for proc in self.procs:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
            proc.wait()


def _serve_parser() -> None:
    """Child side: read pickled chunks of raw mails on stdin, answer parsed ones.

    A reader and a writer thread keep a few chunks queued on either side, so
    the parser never waits for the parent to send or to collect a chunk."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    inbox: queue.Queue = queue.Queue(maxsize=4)
    outbox: queue.Queue = queue.Queue(maxsize=4)
    reader = threading.Thread(target=_read_chunks, args=(sys.stdin.buffer, inbox), daemon=True)
    writer = threading.Thread(target=_write_answers, args=(out, outbox), daemon=True)
    reader.start()
    writer.start()
    while (item := inbox.get()) is not None:
        (edges, limits), part = item
        try:
            data = pickle.dumps([_parse_item(raw, edges, limits) for raw in part],
                                protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a parser bug: the parent raises it
            data = pickle.dumps(RuntimeError(f"mail parser failed: {exc!r}"))
        outbox.put(data)
    outbox.put(None)
    writer.join()


def _read_chunks(inp, inbox: queue.Queue) -> None:
    while True:
        try:
            item = pickle.load(inp)
        except EOFError:
            item = None
        inbox.put(item)
        if item is None:
            return


def _write_answers(out, outbox: queue.Queue) -> None:
    try:
        while (data := outbox.get()) is not None:
            out.write(data)
            out.flush()
    except BrokenPipeError:  # the parent stopped listening
        os._exit(0)
