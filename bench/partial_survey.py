"""Series that reached a list only in part (issue 20 point 2): how many there are in a real
archive, and whether reviewapp's grouping of them agrees with patchwork's.

  .venv/bin/python bench/partial_survey.py [ARCHIVE.mbox.gz]

Reads the archive in order, in memory (no database). A "partial" patch is a patch of an
N-patch posting (N >= 2) that answers a mail the archive does not hold. Ours:
untangle.grouping.anchor_of over the whole archive. Patchwork's, as its parser assigns a
patch to a series (patchwork/parser.py, find_series and parse_mail, rewritten here from
reading it): a series is found through any of the patch's own msgid, In-Reply-To and
References (newest first) that an earlier patch of it recorded; else by the same submitter,
version and N within 10 minutes; a series that already has this patch's number is not
joined (a new one starts, recording the references no series holds yet).
Prints the counts and every group where the two differ.
"""
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from untangle import grouping, mail as mails  # noqa: E402
from untangle.mbox import messages_from_path  # noqa: E402

ARCHIVE = REPO.parent / "shared" / "archives" / "linux-kselftest-2019-2021.mbox.gz"
SERIES_DELAY = timedelta(minutes=10)


def light(raw: bytes) -> dict | None:
    try:
        m = mails.parse(raw)
    except mails.MailError:
        return None
    return {"msgid": m.msgid, "kind": m.kind, "version": m.version, "number": m.number, "total": m.total,
            "in_reply_to": m.in_reply_to, "references": m.references, "from_email": m.from_email,
            "date": m.date, "title": m.title, "subject": m.subject}


class Patchwork:
    """Patchwork's series assignment for patches (covers only record their own msgid)."""

    def __init__(self):
        self.ref_series: dict[str, int] = {}
        self.series: list[dict] = []

    def _by_refs(self, m: dict) -> int | None:
        refs = [m["msgid"]] + ([m["in_reply_to"]] if m["in_reply_to"] else [])
        refs += [r for r in reversed(m["references"] or []) if r not in refs]
        for ref in refs:
            if ref in self.ref_series:
                return self.ref_series[ref]
        return None

    def _by_markers(self, m: dict) -> int | None:
        for i in range(len(self.series) - 1, -1, -1):
            s = self.series[i]
            if (s["submitter"], s["version"], s["total"]) == (m["from_email"], m["version"], m["total"]) \
                    and m["date"] and s["date"] and abs(s["date"] - m["date"]) <= SERIES_DELAY:
                return i
        return None

    def add(self, m: dict) -> int | None:
        if m["kind"] == "cover":
            sid = self.ref_series.get(m["msgid"])
            if sid is None:
                sid = self._new(m)
                self.ref_series[m["msgid"]] = sid
            return sid
        if m["kind"] != "patch":
            return None
        number = m["number"] or 1
        sid = self._by_refs(m) if m["total"] else None
        if sid is None and m["total"]:
            sid = self._by_markers(m)
        if sid is None or number in self.series[sid]["numbers"]:
            sid = self._new(m)
            for ref in [m["in_reply_to"], *(m["references"] or []), m["msgid"]]:
                if ref and ref not in self.ref_series:
                    self.ref_series[ref] = sid
        self.series[sid]["numbers"].add(number)
        return sid

    def _new(self, m: dict) -> int:
        self.series.append({"submitter": m["from_email"], "version": m["version"], "total": m["total"],
                            "date": m["date"], "numbers": set()})
        return len(self.series) - 1


def main() -> None:
    archive = Path(sys.argv[1]) if len(sys.argv) > 1 else ARCHIVE
    rows = [r for r in map(light, messages_from_path(archive)) if r is not None]
    by_id = {}
    for r in rows:
        by_id.setdefault(r["msgid"], r)  # the archive holds a few mails twice
    pw = Patchwork()
    pw_of = {}
    for r in by_id.values():
        sid = pw.add(r)
        if sid is not None:
            pw_of[r["msgid"]] = sid
    partial = [r for r in by_id.values() if r["kind"] == "patch" and (r["total"] or 0) >= 2 and r["number"]
               and grouping.absent_root(r, by_id.get) is not None]
    ours: dict[str, list[str]] = defaultdict(list)
    for r in partial:
        ours[grouping.anchor_of(r, by_id.get)].append(r["msgid"])
    theirs: dict[int, set[str]] = defaultdict(set)
    for msgid, sid in pw_of.items():
        theirs[sid].add(msgid)
    agree, differ = 0, []
    for anchor, members in ours.items():
        pw_sets = {frozenset(theirs[pw_of[m]]) for m in members}
        if len(pw_sets) == 1 and set(members) == set(next(iter(pw_sets))):
            agree += 1
        else:
            differ.append((anchor, sorted(members), [sorted(s) for s in pw_sets]))
    several = sum(1 for m in ours.values() if len(m) > 1)
    before = len({grouping.anchor_of(r, by_id.get, partial=False) for r in partial})
    print(f"{len(by_id)} mails; {len(partial)} patches of N-patch postings answering a mail not in the archive")
    print(f"reviewapp: {len(ours)} partial revisions ({several} of several patches); the threading walk "
          f"alone made {before} revisions of them")
    print(f"patchwork agrees on {agree} of {len(ours)} ({100 * agree / max(len(ours), 1):.1f}%)")
    for anchor, members, pw_sets in differ:
        print(f"- {anchor}\n    ours: {members}\n    patchwork: {pw_sets}")


if __name__ == "__main__":
    main()
