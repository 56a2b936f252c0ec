"""Who is expected to review a file: the kernel's MAINTAINERS, read the way
`scripts/get_maintainer.pl --no-git --no-git-fallback --no-rolestats` reads it
(M:, R:, L:, S:, F:, X:, N:, K:; .mailmap; duplicates removed by name or address;
the chief penguin left out; subscribers-only lists left out), without its
git-history heuristics. Plain text in, typed entries out.

The answer for a file equals that script's (tests/integration/test_maintainers_61.py
runs both on Debian's 6.1 tree); the order among sections of equal pattern depth
is the file's (the script's own is Perl hash order, so not fixed).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

MAINTAINER, REVIEWER, LIST = "maintainer", "reviewer", "list"
_TYPED = re.compile(r"^([A-Z]):\s*(.*)")
_CHIEF = "Linus Torvalds <torvalds@linux-foundation.org>"
MAX_TEXT = 8 * 1024 * 1024  # a MAINTAINERS or .mailmap larger than this is refused


@dataclass(frozen=True)
class Expected:
    """One person or list expected to see a change to a file."""
    name: str
    email: str
    role: str  # maintainer, reviewer, list
    section: str
    status: str = ""  # the section's S: (Maintained, Supported, Odd Fixes, ...)

    def formatted(self) -> str:
        """As get_maintainer.pl prints it ("Name <addr>", the name quoted when it must be)."""
        return format_email(self.name, self.email) if self.role != LIST else self.email

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Section:
    title: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (type, value as typed)
    # F: (regex, depth, is a directory pattern) and N: (regex, 0, None), in line order
    covers: list[tuple["re.Pattern", int, bool | None]] = field(default_factory=list)
    excludes: list[tuple["re.Pattern", bool]] = field(default_factory=list)
    keywords: list["re.Pattern"] = field(default_factory=list)  # K:

    @property
    def status(self) -> str:
        return next((v for t, v in self.lines if t == "S"), "")


def _quote(name: str) -> str:
    # The script works on bytes: \w is ASCII, so any other letter makes a name "must quote".
    if re.search(r"[^\w \-]", name, re.A):
        name = '"' + re.sub(r'(?<!\\)"', r'\\"', name) + '"'
    return name


def parse_email(text: str) -> tuple[str, str]:
    """get_maintainer.pl's parse_email: (name, address), the name quoted when it must be."""
    name, address = "", ""
    if m := re.match(r"^([^<]+)<(.+@.*)>.*$", text):
        name, address = m.group(1), m.group(2)
    elif m := re.match(r"^\s*<(.+@\S*)>.*$", text):
        address = m.group(1)
    elif m := re.match(r"^(.+@\S*).*$", text):
        address = m.group(1)
    name = re.sub(r'^"|"$', "", name.strip())
    return _quote(name), address.strip()


def format_email(name: str, address: str) -> str:
    name = _quote(re.sub(r'^"|"$', "", name.strip()))
    address = address.strip()
    return f"{name} <{address}>" if name else address


def _unquoted(name: str) -> str:
    return name[1:-1].replace('\\"', '"') if len(name) > 1 and name[0] == name[-1] == '"' else name


class Mailmap:
    """.mailmap as get_maintainer.pl reads it (names and addresses by address or by "name <address>")."""

    def __init__(self, text: str = "") -> None:
        self.names: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        for line in text[:MAX_TEXT].split("\n"):
            self._read(re.sub(r"#.*$", "", line).strip())

    def _read(self, line: str) -> None:
        if not line:
            return
        if m := re.match(r"^([^<]+)<([^>]+)>$", line):
            name, addr = parse_email(f"{m.group(1).rstrip()} <{m.group(2)}>")
            self.names[addr] = name
        elif m := re.match(r"^<([^>]+)>\s*<([^>]+)>$", line):
            self.addresses[m.group(2)] = m.group(1)
        elif m := re.match(r"^(.+)<([^>]+)>\s*<([^>]+)>$", line):
            name, addr = parse_email(f"{m.group(1).rstrip()} <{m.group(2)}>")
            self.names[m.group(3)] = name
            self.addresses[m.group(3)] = addr
        elif m := re.match(r"^(.+)<([^>]+)>\s*(.+)\s*<([^>]+)>$", line):
            name, addr = parse_email(f"{m.group(1).rstrip()} <{m.group(2)}>")
            wname, waddr = parse_email(f"{m.group(3).rstrip()} <{m.group(4)}>")
            wrong = format_email(wname, waddr)
            self.names[wrong] = name
            self.addresses[wrong] = addr

    def map(self, text: str) -> str:
        name, address = parse_email(text)
        email = format_email(name, address)
        if email in self.names or email in self.addresses:
            name = self.names.get(email, name)
            address = self.addresses.get(email, address)
        else:
            name = self.names.get(address, name)
            address = self.addresses.get(address, address)
        return format_email(name, address)


def _file_pattern(value: str, is_dir: Callable[[str], bool]) -> tuple[str, int]:
    value = value.replace(".", "\\.").replace("*", ".*").replace("?", ".")
    if is_dir(value) and not value.endswith("/"):
        value += "/"
    depth = value.count("/") + (0 if value.endswith("/") else 1)
    return value, (-1 if value.startswith(".*") else depth)


def _regex(value: str, verbose: bool = False) -> "re.Pattern | None":
    try:
        return re.compile(value, re.X if verbose else 0)
    except (re.error, OverflowError, RecursionError):
        return None  # a pattern Python's re cannot read matches nothing


class Maintainers:
    """A parsed MAINTAINERS file. `dirs` are the tree's directories (a pattern naming
    one without its trailing slash covers the whole directory, as the script's -d test does)."""

    def __init__(self, text: str, mailmap: Mailmap | None = None,
                 dirs: Iterable[str] = ()) -> None:
        if len(text) > MAX_TEXT:
            raise ValueError(f"MAINTAINERS is {len(text)} bytes, over {MAX_TEXT}")
        self.mailmap = mailmap or Mailmap()
        dirset = {d.rstrip("/") for d in dirs}
        self.sections = list(_sections(text, lambda p: p in dirset))
        # Sections by the first path component their F:/X: patterns name literally; the
        # rest (wildcards, N: regexes) are tried for every path. 2,600 sections in 6.1.
        self._by_top: dict[str, list[int]] = {}
        self._anywhere: list[int] = []
        for i, sec in enumerate(self.sections):
            tops = {_top(rx.pattern) for rx, _d, dir_pattern in sec.covers if dir_pattern is not None}
            if any(dir_pattern is None for _rx, _d, dir_pattern in sec.covers) or None in tops:
                self._anywhere.append(i)
            else:
                for top in tops:
                    self._by_top.setdefault(top, []).append(i)

    def sections_for(self, path: str) -> list[tuple[_Section, int]]:
        """Sections that cover path, most specific first (ties in file order)."""
        hits = []
        top = path.split("/", 1)[0]
        for i in sorted(set(self._by_top.get(top, ())).union(self._anywhere)):
            s = self.sections[i]
            if any(_matches(path, rx, raw) for rx, raw in s.excludes):
                continue
            depth = None
            for rx, pd, dir_pattern in s.covers:  # the last line that matches sets it, as in the script
                if rx.search(path) if dir_pattern is None else _matches(path, rx, dir_pattern):
                    depth = pd
            if depth is not None:
                hits.append((depth, i, s))
        return [(s, d) for d, i, s in sorted(hits, key=lambda h: (-h[0], h[1]))]

    def for_files(self, paths: Iterable[str], file_text: Callable[[str], str | None]) -> list[Expected]:
        """`get_maintainer.pl -f FILE...`: K: patterns are matched against each file's text."""
        paths = list(paths)

        def texts():
            return [t for p in paths if p != "MAINTAINERS" and (t := file_text(p)) is not None]
        return self.expected(paths, texts, file_text)

    def expected(self, paths: Iterable[str], keyword_text: Callable[[], Iterable[str]] | None = None,
                 file_text: Callable[[str], str | None] | None = None) -> list[Expected]:
        """Who get_maintainer.pl names for these paths: people first, then lists.
        keyword_text gives the texts K: patterns are matched against (the files, or a patch's
        lines); file_text(path) the text of a file in the tree (a .yaml binding names its
        maintainers inside, and the script reads them)."""
        paths = list(paths)
        acc = _Accumulator(self.mailmap)
        for path in paths:
            for section, _depth in self.sections_for(path):
                acc.add(section)
        if keyword_text is not None:
            texts = list(keyword_text())
            for s in self.sections:
                if s.keywords and any(rx.search(t) for rx in s.keywords for t in texts):
                    acc.add(s)
        in_files = []
        if file_text is not None:
            for path in paths:
                if path.endswith(".yaml") and (text := file_text(path)) is not None:
                    in_files += emails_in_file(text)
        return acc.result(in_files)


def _top(pattern: str) -> str | None:
    """The first path component a pattern names literally (None: it could match any)."""
    head = pattern.split("/", 1)[0]
    literal = head.replace("\\.", "")
    if "/" not in pattern or re.search(r"[.*?+\[\](){}|^$\\]", literal):
        return None
    return head.replace("\\.", ".")


def _matches(path: str, rx: "re.Pattern", is_dir_pattern: bool) -> bool:
    if not rx.match(path):
        return False
    return is_dir_pattern or path.count("/") == rx.pattern.count("/")


def _sections(text: str, is_dir: Callable[[str], bool]) -> Iterable[_Section]:
    current: _Section | None = None
    title = ""
    for line in text.split("\n"):
        m = _TYPED.match(line)
        if not m:
            if not (not line.strip() or line.lstrip().startswith("#")):
                title, current = line.rstrip("\r"), None
            continue
        if current is None:
            current = _Section(title=title)
            yield current
        kind, value = m.group(1), m.group(2).rstrip("\r")
        current.lines.append((kind, value))
        if kind in ("F", "X"):
            pattern, depth = _file_pattern(value, is_dir)
            if (rx := _regex(pattern)) is not None:
                if kind == "F":
                    current.covers.append((rx, depth, pattern.endswith("/")))
                else:
                    current.excludes.append((rx, pattern.endswith("/")))
        elif kind == "N" and (rx := _regex(value, verbose=True)) is not None:
            current.covers.append((rx, 0, None))
        elif kind == "K" and (rx := _regex(value, verbose=True)) is not None:
            current.keywords.append(rx)


class _Accumulator:
    """add_categories, push_email_address and deduplicate_email of the script."""

    def __init__(self, mailmap: Mailmap) -> None:
        self.mailmap = mailmap
        self.people: list[tuple[str, str, str, str]] = []  # (formatted, role, section, status)
        self.lists: list[tuple[str, str, str]] = []
        self._names: set[str] = set()
        self._addresses: set[str] = set()
        self._list_seen: set[str] = set()

    def add(self, s: _Section) -> None:
        for kind, value in s.lines:
            if kind == "L":
                self._list(value, s)
            elif kind in ("M", "R"):
                self._person(value, MAINTAINER if kind == "M" else REVIEWER, s)

    def _list(self, value: str, s: _Section) -> None:
        address, extra = value, ""
        if m := re.match(r"([^\s]+)\s+(.*)$", value):
            address, extra = m.group(1), m.group(2)
        if "subscribers-only" in extra or address.lower() in self._list_seen:
            return
        self._list_seen.add(address.lower())
        self.lists.append((address, s.title, s.status))

    def _person(self, value: str, role: str, s: _Section) -> None:
        for one in _addresses(value):
            name, address = parse_email(one)
            if not address:
                continue
            if (name and name.lower() in self._names) or address.lower() in self._addresses:
                continue
            self.people.append((format_email(name, address), role, s.title, s.status))
            if name:
                self._names.add(name.lower())
            self._addresses.add(address.lower())

    def result(self, in_files: list[str] = ()) -> list[Expected]:
        by_name: dict[str, tuple[str, str]] = {}
        by_address: dict[str, tuple[str, str]] = {}
        out: list[Expected] = []
        seen: set[str] = set()
        people = [(self._dedup(f, by_name, by_address), role, sec, st) for f, role, sec, st in self.people]
        lists = [(self._dedup(a, by_name, by_address), LIST, sec, st) for a, sec, st in self.lists]
        people = [p for p in people if not re.search(_CHIEF, p[0])]
        for one in in_files:  # after the chief is left out, as in the script
            name, address = parse_email(self.mailmap.map(one))
            if address and not ((name and name.lower() in self._names) or address.lower() in self._addresses):
                people.append((format_email(name, address), MAINTAINER, "(named in the file)", ""))
                if name:
                    self._names.add(name.lower())
                self._addresses.add(address.lower())
        for formatted, role, section, status in people + lists:
            if formatted in seen:
                continue
            seen.add(formatted)
            name, address = parse_email(formatted)
            out.append(Expected(_unquoted(name), address, role, section, status))
        return out

    def _dedup(self, email: str, by_name: dict, by_address: dict) -> str:
        email = self.mailmap.map(email)
        name, address = parse_email(email)
        if name and name.lower() in by_name:
            name, address = by_name[name.lower()]
        elif address.lower() in by_address:
            name, address = by_address[address.lower()]
        else:
            by_name[name.lower()] = (name, address)
            by_address[address.lower()] = (name, address)
        return self.mailmap.map(format_email(name, address))


def _addresses(value: str) -> list[str]:
    """One M:/R: value: usually one address; a comma list is split as the script's
    rfc822_validlist would (outside quotes)."""
    if "," not in value or value.count("@") < 2:
        return [value]
    parts, depth, cur = [], False, ""
    for ch in value:
        if ch == '"':
            depth = not depth
        if ch == "," and not depth:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def patch_keyword_lines(diff: str, message: str = "") -> list[str]:
    """The lines K: patterns are matched against for a patch: the message whole, the diff's
    added and removed lines (get_maintainer.pl's patch mode)."""
    lines = message.split("\n")
    lines += [x for x in diff.split("\n") if x[:1] in ("+", "-") and not x.startswith(("+++", "---"))]
    return lines


# The script's byte-level classes: "À-ÿ" in its (UTF-8) source is the bytes C3 80 - C3 BF.
_LETTERS = "A-Za-z\x80-\xc3\xbf"
_FILE_EMAIL = re.compile(rf"[{_LETTERS}\"' ,.+-]*\s*[,]*\s*[(<{{]?[A-Za-z0-9_.+-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9]+[)>}}]?", re.A)
_NOT_NAME = re.compile(rf"[^{_LETTERS}',.+-]", re.A)


def emails_in_file(text: str) -> list[str]:
    """The addresses get_maintainer.pl takes from a file's text (clean_file_emails), worked
    on the UTF-8 bytes as the script does, so its oddities (a name cut inside a letter) agree."""
    raw = text.encode("utf-8", "surrogateescape").decode("latin-1")
    out = []
    for found in _FILE_EMAIL.findall(raw):
        found = re.sub(r"[(<{]?([A-Za-z0-9_.+-]+@[A-Za-z0-9.-]+)[)>}]?", r"<\1>", found)
        name, address = parse_email(found)
        if name == '"[,.]"':
            name = ""
        words = _NOT_NAME.split(name)
        while words and words[-1] == "":  # Perl's split drops trailing empty fields
            words.pop()
        if len(words) > 2:
            first, middle, last = words[-3:]
            if (len(first) == 1 and first.isascii() and first.isalpha()) or \
                    (len(first) == 2 and first[-1] == ".") or \
                    len(middle) == 1 or (len(middle) == 2 and middle[-1] == "."):
                name = f"{first} {middle} {last}"
            else:
                name = f"{middle} {last}"
        if name[-1:] in (",", "."):
            name = name[:-1]
        elif re.search(r'[,.]"', name[-2:]):
            name = name[:-2] + '"'
        if name[:1] in (",", "."):
            name = name[1:]
        elif re.search(r'"[,.]', name[:2]):
            name = '"' + name[2:]
        email = format_email(name, address)
        out.append(email.encode("latin-1").decode("utf-8", "replace"))
    return out
