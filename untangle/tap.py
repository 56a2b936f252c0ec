"""Parse TAP13/TAP14 and KTAP output, as printed by kernel selftests over a serial console.

The input is messy by nature: kernel log lines interleave with the test's own
output, serial consoles add \\r\\n and stray control bytes, a crashed guest stops
mid-stream. So the parser never raises: whatever it cannot make sense of is either
ignored (garbage lines) or reported in ``problems`` (missing plan, count mismatch,
duplicate numbers, unterminated YAML, bail out).

``parse(text)`` returns a ``TapReport``: its ``tests`` (``TapTest`` name, result
"ok" / "not ok" / "skip", detail), ``plan``, ``bailed_out``, ``problems`` (sentences
about the stream's shape), ``version``, and ``found``: False when the text held no
TAP at all (no plan, no result line). That is a fact, not a problem sentence, so a
caller that can read the output another way decides whether it matters;
``problem_lines()`` gives the sentences including "no TAP output found".

Diagnostic lines ("# ...") go into the detail of a test: of the next result line in
KTAP and kselftest TAP13 (the kernel prints the reason, then "not ok"), of the
previous one in versionless/TAP14 streams (Perl-style). Leftovers at the end of a
block go to its last test, leading ones to its first.

Nested subtests are flattened: a parent "ok 1 uffd" whose indented block holds
"ok 2 minor" yields "uffd" followed by "uffd/minor"; the parent's own result is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["NO_TAP", "Result", "TapReport", "TapTest", "parse"]

Result = Literal["ok", "not ok", "skip"]
NO_TAP = "no TAP output found"


@dataclass(frozen=True)
class TapTest:
    """One result line (subtests flattened as "parent/child")."""

    name: str
    result: Result
    detail: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "result": self.result, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict) -> "TapTest":
        return cls(name=str(data.get("name", "")), result=data.get("result", ""),
                   detail=str(data.get("detail") or ""))


@dataclass(frozen=True)
class TapReport:
    tests: tuple[TapTest, ...] = ()
    plan: int | None = None
    bailed_out: bool = False
    problems: tuple[str, ...] = ()
    version: str | None = None
    found: bool = False  # any plan or result line (or a bail-out) at all

    def problem_lines(self) -> list[str]:
        """The problems as sentences, "no TAP output found" first when nothing was."""
        return ([] if self.found else [NO_TAP]) + list(self.problems)

# "[    1.234567] ..." and the "<6>[ 1.2]" form of /dev/kmsg dumps.
_KERNEL_LOG = re.compile(r"^\s*(<\d+>)?\[\s*\d+\.\d+\]")
# ANSI escapes and control bytes a serial console may inject (tab is kept).
_NOISE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-~])|[\x00-\x08\x0b-\x1f\x7f]")
_VERSION = re.compile(r"^(K?TAP) version (\d+)\s*$", re.I)
_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s+)?(.*)$")
_BAIL = re.compile(r"^Bail out!\s*(.*)$", re.I)
_SUBTEST = re.compile(r"^#\s*Subtest:\s*(.*)$", re.I)
# Directive after the first unescaped '#': SKIP/SKIPPED, TODO, XFAIL, TIMEOUT, ERROR.
_DIRECTIVE = re.compile(r"(?<!\\)#\s*(SKIP\w*|TODO|XFAIL|TIMEOUT|ERROR)\b:?\s*(.*)$", re.I)


@dataclass
class _Test:
    number: int
    name: str
    result: str
    detail: list[str] = field(default_factory=list)
    children: list["_Test"] = field(default_factory=list)
    indent: int = 0  # where its YAML block must be indented past


@dataclass
class _Block:
    """One TAP stream at one indentation: the top level or a subtest."""

    indent: int
    precede: bool  # KTAP: diagnostics belong to the next result, TAP13: to the last one
    name: str | None = None
    plan: int | None = None
    tests: list[_Test] = field(default_factory=list)
    pending_diag: list[str] = field(default_factory=list)
    finished_child: "_Block | None" = None
    seen: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def parse(text: str) -> TapReport:
    parser = _Parser()
    for raw in re.split(r"\r\n|\r|\n", text or ""):
        if parser.feed(raw):
            break
    return parser.finish()


class _Parser:
    def __init__(self) -> None:
        self.stack: list[_Block] = []
        self.version: str | None = None
        self.bailed_out = False
        self.problems: list[str] = []
        self.yaml_test: _Test | None = None
        self.yaml_indent = 0
        self.pending_subtest_name: str | None = None

    # -- line dispatch -------------------------------------------------------
    def feed(self, raw: str) -> bool:
        """Consume one line; return True when the stream must stop (bail out)."""
        line = _NOISE.sub("", raw).expandtabs(4).rstrip()
        if not line.strip() or _KERNEL_LOG.match(line):
            return False
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if self.yaml_test is not None and self._feed_yaml(indent, body, line):
            return False
        bail = _BAIL.match(body)
        if bail:
            self.bailed_out = True
            self.problems.append(f"bailed out: {bail.group(1)}".rstrip(": "))
            return True
        kind = self._kind(body)
        if kind is None:
            return False  # garbage: stderr noise, shell messages, half lines
        self._place(indent, kind)
        getattr(self, f"_on_{kind}")(body, indent)
        return False

    @staticmethod
    def _kind(body: str) -> str | None:
        if _VERSION.match(body):
            return "version"
        if _PLAN.match(body):
            return "plan"
        if _RESULT.match(body):
            return "result"
        if _SUBTEST.match(body):
            return "subtest"
        if body.startswith("#"):
            return "diag"
        return None

    def _place(self, indent: int, kind: str) -> None:
        """Close blocks indented deeper than this line; open one for deeper TAP."""
        if not self.stack:
            self.stack.append(_Block(indent=indent, precede=False))
            return
        while len(self.stack) > 1 and indent < self.stack[-1].indent:
            self._close_top()
        top = self.stack[-1]
        # An indented diagnostic alone does not start a subtest; TAP lines do.
        if indent > top.indent and kind != "diag":
            if top.finished_child is not None:
                self._orphan(top)
            child = _Block(indent=indent, precede=top.precede, name=self.pending_subtest_name)
            self.pending_subtest_name = None
            self.stack.append(child)

    # -- per-kind handlers ---------------------------------------------------
    def _on_version(self, body: str, indent: int) -> None:
        kind, number = _VERSION.match(body).groups()
        block = self.stack[-1]
        label = f"{kind.upper()}{number}"
        # Kernel output (KTAP, and kselftest's "TAP version 13") prints a test's
        # diagnostics before its result line (Documentation/dev-tools/ktap.rst);
        # classic Perl-style TAP prints them after. TAP14 producers put details in
        # YAML, so they follow the classic rule.
        block.precede = label in ("KTAP1", "KTAP2", "TAP13")
        if len(self.stack) == 1:
            if self.version is not None and block.tests:
                block.problems.append("a second version line started a new stream at the same level")
            self.version = self.version or label

    def _on_plan(self, body: str, indent: int) -> None:
        block = self.stack[-1]
        count = int(_PLAN.match(body).group(1))
        if block.plan is not None:
            block.problems.append(f"plan given twice (1..{block.plan} then 1..{count})")
        block.plan = count

    def _on_subtest(self, body: str, indent: int) -> None:
        name = _SUBTEST.match(body).group(1).strip()
        block = self.stack[-1]
        if len(self.stack) > 1 and indent == block.indent and not block.tests and block.name is None:
            block.name = name  # KTAP style: header inside the indented block
        else:
            self.pending_subtest_name = name  # TAP13 style: header before the block

    def _on_diag(self, body: str, indent: int) -> None:
        block = self.stack[-1]
        text = body.lstrip("#").strip()
        if block.precede or not block.tests or block.finished_child is not None:
            block.pending_diag.append(text)
        else:
            block.tests[-1].detail.append(text)

    def _on_result(self, body: str, indent: int) -> None:
        block = self.stack[-1]
        status, number, rest = _RESULT.match(body).groups()
        number_i = self._number(block, number)
        name, result, reason = _split_directive(status, rest)
        test = _Test(number=number_i, name=name or f"test {number_i}", result=result, indent=indent)
        test.detail.extend(block.pending_diag)
        block.pending_diag = []
        if reason:
            test.detail.append(reason)
        if block.finished_child is not None:
            test.children = self._flatten_child(block.finished_child, test.name)
            block.finished_child = None
        block.tests.append(test)
        self.yaml_test, self.yaml_indent = test, 0  # a YAML block may follow

    def _number(self, block: _Block, given: str | None) -> int:
        expected = len(block.tests) + 1
        if given is None:
            number = expected
        else:
            number = int(given)
            if number in block.seen:
                block.problems.append(f"test number {number} appears twice")
            elif number != expected:
                block.problems.append(f"test number {number} out of order (expected {expected})")
        block.seen.add(number)
        return number

    # -- YAML blocks ---------------------------------------------------------
    def _feed_yaml(self, indent: int, body: str, line: str) -> bool:
        """Return True when the line belonged to a YAML block (or opened one)."""
        test = self.yaml_test
        if self.yaml_indent == 0:  # waiting to see whether "---" follows the result
            if body == "---" and indent > test.indent:
                self.yaml_indent = indent
                return True
            self.yaml_test = None
            return False
        if indent >= self.yaml_indent and body == "...":
            self.yaml_test = None
            return True
        if indent < self.yaml_indent and self._kind(body) in ("result", "plan", "version"):
            self.problems.append(f"YAML block of test '{test.name}' not terminated with '...'")
            self.yaml_test = None
            return False
        test.detail.append(line[self.yaml_indent:] if indent >= self.yaml_indent else body)
        return True

    # -- structure -----------------------------------------------------------
    def _close_top(self) -> None:
        child = self.stack.pop()
        _flush_diag(child)
        parent = self.stack[-1]
        if parent.finished_child is not None:
            self._orphan(parent)
        parent.finished_child = child

    def _orphan(self, parent: _Block) -> None:
        """A subtest block no parent result line claimed: keep its results anyway."""
        child = parent.finished_child
        parent.finished_child = None
        name = child.name or f"subtest after test {len(parent.tests)}"
        self.problems.append(f"subtest '{name}' has no result line of its own")
        holder = _Test(number=0, name=name, result="", children=self._flatten_child(child, name))
        parent.tests.append(holder)

    def _flatten_child(self, child: _Block, name: str) -> list[_Test]:
        self.problems.extend(f"subtest '{name}': {p}" for p in _block_problems(child))
        return child.tests

    def finish(self) -> TapReport:
        if self.yaml_test is not None and self.yaml_indent:
            self.problems.append(f"YAML block of test '{self.yaml_test.name}' not terminated with '...'")
        if not self.stack:
            # Only a bail-out can come before any TAP line; it is output enough.
            return TapReport(bailed_out=self.bailed_out, problems=tuple(self.problems),
                             found=self.bailed_out)
        while len(self.stack) > 1:
            self._close_top()
        top = self.stack[0]
        if top.finished_child is not None:
            self._orphan(top)
        _flush_diag(top)
        problems = _block_problems(top, bailed=self.bailed_out) + self.problems
        return TapReport(tests=tuple(_flatten(top.tests, "")), plan=top.plan,
                         bailed_out=self.bailed_out, problems=tuple(problems),
                         version=self.version, found=bool(top.tests) or top.plan is not None)


def _split_directive(status: str, rest: str) -> tuple[str, str, str]:
    """Return (name, result, reason) from the text after the test number."""
    result = status
    match = _DIRECTIVE.search(rest)
    if not match:
        return _unescape(rest.strip()), result, ""
    name = rest[: match.start()].strip()
    word, reason = match.group(1).upper(), match.group(2).strip()
    if word.startswith("SKIP"):
        result = "skip"
    elif word in ("TODO", "XFAIL"):
        result = "ok"  # an expected failure is not a failure of the run
    label = "SKIP" if word.startswith("SKIP") else word
    return _unescape(name), result, f"{label}: {reason}" if reason else label


def _unescape(name: str) -> str:
    return name.replace("\\#", "#").replace("\\\\", "\\")


def _flush_diag(block: _Block) -> None:
    """Diagnostics left at the end of a block belong to its last test."""
    if block.pending_diag and block.tests:
        block.tests[-1].detail.extend(block.pending_diag)
        block.pending_diag = []


def _block_problems(block: _Block, bailed: bool = False) -> list[str]:
    problems = list(block.problems)
    ran = sum(1 for t in block.tests if t.result)
    if block.plan is None:
        if block.tests:
            problems.append("no plan (1..N) line")
        # An empty top level is TapReport.found = False, not a sentence here.
    elif block.plan != ran and not bailed:
        problems.append(f"planned {block.plan} tests but {ran} ran")
    return problems


def _flatten(tests: list[_Test], prefix: str) -> list[TapTest]:
    out: list[TapTest] = []
    for test in tests:
        name = prefix + test.name
        if test.result:  # orphan holders have no result of their own
            out.append(TapTest(name=name, result=test.result, detail="\n".join(test.detail)))
        out.extend(_flatten(test.children, name + "/"))
    return out
