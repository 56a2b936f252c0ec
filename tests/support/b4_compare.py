"""Our trailer set per patch against the one `b4 am` puts on it, on real threads.

Threads come from an archive (mboxrd, oldest first); a thread is every mail whose
References/In-Reply-To lead to the same root. Only threads whose replies give a
Reviewed-by/Acked-by/Tested-by count ("threads with follow-up trailers"). b4 runs
offline on the thread's own mbox (`b4 am -m`), attestation off.
"""
from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from untangle.mbox import messages_from_path

KINDS = ("reviewed-by", "acked-by", "tested-by")
_FOLLOWUP = re.compile(rb"^\s*(Reviewed|Acked|Tested)-by:", re.M | re.I)
_ID = re.compile(r"<([^<>\s]+)>")
B4 = shutil.which("b4") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "b4")


@dataclass
class Thread:
    root: str
    raws: list[bytes] = field(default_factory=list)
    msgids: set[str] = field(default_factory=set)


def _ids(value) -> list[str]:
    return _ID.findall(str(value or ""))


def threads_with_followup_trailers(archive: Path, limit: int | None = None) -> list[Thread]:
    """Patch threads whose replies give review trailers, in archive order. A thread is
    what References/In-Reply-To join, whatever order its mails came in (a patch archived
    before its cover is still the cover's)."""
    heads: list[tuple[str, str, list[str], bytes]] = []  # (msgid, subject, refs, raw)
    parent: dict[str, str] = {}
    seen: set[str] = set()

    def root(m: str) -> str:
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m
    for raw in messages_from_path(archive):
        head = email.message_from_bytes(raw.split(b"\n\n", 1)[0] + b"\n\n", policy=email.policy.compat32)
        mid = (_ids(head["Message-ID"]) or [None])[0]
        if mid is None or mid in seen:
            continue
        seen.add(mid)
        refs = _ids(head["References"]) + _ids(head["In-Reply-To"])
        parent.setdefault(mid, mid)
        for ref in refs:
            parent.setdefault(ref, ref)
            a, b = root(ref), root(mid)
            if a != b:
                parent[b] = a
        heads.append((mid, str(head["Subject"] or ""), refs, raw))
    threads: dict[str, Thread] = {}
    order: dict[str, int] = {}
    subjects = {}
    for i, (mid, subject, refs, raw) in enumerate(heads):
        t = threads.setdefault(root(mid), Thread(""))
        if mid in t.msgids:
            continue
        order.setdefault(root(mid), i)
        subjects[mid] = subject
        t.raws.append(raw)
        t.msgids.add(mid)
        if not t.root and not any(r in seen for r in refs if r != mid):
            t.root = mid  # the mail the thread hangs from
    out = []
    for key, t in threads.items():
        t.root = t.root or next(iter(sorted(t.msgids)))
        if "PATCH" not in subjects.get(t.root, "").upper():
            continue
        if any(re.match(r"(?i)\s*re:", subjects[m]) for m in t.msgids) and any(
                _FOLLOWUP.search(r.split(b"\n\n", 1)[-1]) for r in t.raws):
            out.append((order[key], t))
    out.sort(key=lambda x: x[0])
    found = [t for _i, t in out]
    return found[:limit] if limit is not None else found


def write_mbox(thread: Thread, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for raw in thread.raws:
            body = re.sub(rb"(?m)^(>*From )", rb">\1", raw)
            out.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + body.rstrip(b"\n") + b"\n\n")
    return path


def b4_am(mbox: Path, msgid: str, outdir: Path) -> dict[str, set[tuple[str, str]]]:
    """patch msgid -> {(kind, email)} of Reviewed/Acked/Tested-by in b4 am's output."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "b4.attestation-policy",
           "GIT_CONFIG_VALUE_0": "off", "XDG_DATA_HOME": str(outdir), "XDG_CACHE_HOME": str(outdir)}
    subprocess.run([B4, "--offline-mode", "am", "-m", str(mbox), "-o", str(outdir), msgid],
                   capture_output=True, env=env, timeout=120, cwd=outdir)
    found: dict[str, set[tuple[str, str]]] = {}
    for mbx in outdir.glob("*.mbx"):
        for msg in mailbox.mbox(str(mbx)):
            mid = (_ids(msg["Message-Id"]) or [""])[0]
            body = msg.get_payload(decode=True).decode("utf-8", "replace").split("\n---\n", 1)[0]
            found[mid] = {(k.lower(), _address(v)) for k, v in
                          re.findall(r"(?im)^(Reviewed-by|Acked-by|Tested-by):[ \t]*(.*)$", body)}
    return found


def _address(value: str) -> str:
    m = re.search(r"<([^<>\s]+@[^<>\s]+)>", value) or re.search(r"([^<>\s]+@[^<>\s]+)", value)
    return m.group(1).lower() if m else value.strip().lower()


def ours(msgids: set[str], thread_msgids: set[str]) -> dict[str, set[tuple[str, str]]]:
    """patch msgid -> {(kind, email)} from the stored review state (what a page shows as
    not stale; carried only from mails of the same thread, all b4 can see)."""
    from reviewapp.models import Patch, ReviewState
    out = {}
    patches = {p.message.msgid: p for p in Patch.objects.filter(message__msgid__in=list(msgids))
               .select_related("message")}
    states = {s.revision_id: s.data for s in
              ReviewState.objects.filter(revision_id__in={p.revision_id for p in patches.values()})}
    for mid, p in patches.items():
        entry = next((x for x in (states.get(p.revision_id) or {}).get("patches", []) if x["msgid"] == mid), None)
        if entry is None:
            continue
        out[mid] = {(t["kind"].lower(), t["email"].lower()) for t in entry["trailers"]
                    if t["kind"].lower() in KINDS and not t["stale"]
                    and (t["carried_from"] is None or t["from_msgid"] in thread_msgids)}
    return out


def compare_thread(thread: Thread, work: Path) -> list[dict]:
    mbox = write_mbox(thread, work / "thread.mbox")
    theirs = b4_am(mbox, thread.root, work / "out")
    mine = ours(set(theirs), thread.msgids)
    rows = []
    for mid, want in theirs.items():
        got = mine.get(mid)
        rows.append({"msgid": mid, "equal": got == want, "b4_count": len(want), "only_b4": sorted(want - (got or set())),
                     "only_ours": sorted((got or set()) - want), "stored": got is not None})
    return rows


def compare_archive(archive: Path, work: Path, limit: int | None) -> dict:
    rows = []
    threads = threads_with_followup_trailers(archive, limit)
    for n, t in enumerate(threads):
        rows += compare_thread(t, work / str(n))
        shutil.rmtree(work / str(n), ignore_errors=True)
    equal = sum(r["equal"] for r in rows)
    return {"threads": len(threads), "patches": len(rows), "equal": equal,
            "patches_b4_gives_trailers": sum(1 for r in rows if r["b4_count"]),
            "share": round(equal / len(rows), 4) if rows else None,
            "differences": [r for r in rows if not r["equal"]]}
