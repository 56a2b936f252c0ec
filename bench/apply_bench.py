"""Benchmark: apply a 20-patch, 3-series chain onto a kernel-sized tree.

    .venv/bin/python bench/apply_bench.py [--reps N] [--full-reps N] [--json PATH]

Builds (once, cached under var/bench/) the kernel tree with scripts/make-kernel-tree
and three series of real edits on real files in mm/, virt/kvm/ and fs/ (series 2
builds on lines series 1 added, series 3 adds a new file and renames one), made
with real git and `git format-patch`. Then measures, in one run, side by side:

  floor        in-process object I/O only: read each pre-image blob, write the
               known post-image blob, rebuild the trees, write the commit
  apply_chain  untangle.gitrepo.apply_chain, warm process (as in a worker)
  apply_chain (cold process)  the same, in a fresh Python process incl. imports
  worktree+am  git worktree add (full checkout) + git am + worktree remove
  sparse+am -3 git worktree add --no-checkout + sparse-checkout of the touched
               files + git am -3 + worktree remove
  b4 shazam -H (public-inbox)  the three series as b4 would mail them (covers
               with base-commit:, change-id: and, in series 2 and 3, the
               prerequisite-message-id: and prerequisite-patch-id: lines b4 prep
               writes for the earlier series) served by a real public-inbox-httpd
               on 127.0.0.1 (tests/support/public_inbox.py); one
               `b4 shazam -H <series 3 cover>` fetches the thread, finds the 14
               prerequisite patches by `patchid:` search on that server and
               applies all 20 into FETCH_HEAD
  b4 shazam -H x3 (local mbox)  one `b4 shazam -m <series.mbox> -H` per series,
               each series on the previous FETCH_HEAD (no server)

and checks that every method produces the same final tree.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import email.utils
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from untangle import gitrepo  # noqa: E402
from untangle.gitrepo_patch import parse_diff  # noqa: E402
from tests.support.public_inbox import start_inbox  # noqa: E402

BENCH = ROOT / "var" / "bench"
SERIES_DIR = BENCH / "series"
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench Author", "GIT_AUTHOR_EMAIL": "author@example.org",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.org",
       "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}

# (series, subject, [(file, edit kind)]). Edit kinds are applied by edit_file().
SERIES = [
    ("mm-cleanup", [
        ("mm/page_alloc: annotate allocation slow path", [("mm/page_alloc.c", "note:40"), ("mm/page_alloc.c", "ret:120")]),
        ("mm/memory: document fault retry", [("mm/memory.c", "note:30")]),
        ("mm/mmap: tidy vma merge comments", [("mm/mmap.c", "note:20"), ("mm/mmap.c", "note:60")]),
        ("mm/huge_memory: note split rules", [("mm/huge_memory.c", "note:25")]),
        ("mm/vmscan: explain reclaim priority", [("mm/vmscan.c", "note:70"), ("mm/vmscan.c", "ret:150")]),
        ("mm/gup: annotate pin paths", [("mm/gup.c", "note:15"), ("mm/memory.c", "note:90")]),
        ("mm/filemap: comment readahead", [("mm/filemap.c", "note:50")]),
    ]),
    ("kvm-gmem", [
        ("KVM: annotate vcpu ioctl", [("virt/kvm/kvm_main.c", "note:100")]),
        ("KVM: eventfd: comment irqfd shutdown", [("virt/kvm/eventfd.c", "note:10")]),
        ("mm/memory: build on the fault retry note", [("mm/memory.c", "renote:30")]),
        ("KVM: async_pf: explain completion", [("virt/kvm/async_pf.c", "note:3")]),
        ("KVM: pfncache: document refresh", [("virt/kvm/pfncache.c", "note:4"), ("virt/kvm/kvm_main.c", "ret:200")]),
        ("mm/gup: refine pin annotation", [("mm/gup.c", "renote:15")]),
        ("KVM: selftests: add a bench test", [("tools/testing/selftests/kvm/bench_note_test.c", "newfile")]),
    ]),
    ("fs-notes", [
        ("fs/namei: annotate lookup", [("fs/namei.c", "note:50"), ("fs/namei.c", "ret:140")]),
        ("fs/inode: comment eviction", [("fs/inode.c", "note:40")]),
        ("fs/dcache: explain d_alloc", [("fs/dcache.c", "note:35"), ("fs/dcache.c", "note:90")]),
        ("fs/read_write: note rw_verify_area", [("fs/read_write.c", "note:20")]),
        ("fs/file: annotate fd table", [("fs/file.c", "note:30")]),
        ("Documentation: rename a bench note", [("Documentation/filesystems/vfs.rst", "rename:Documentation/filesystems/vfs-bench.rst")]),
    ]),
]


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, env=ENV, input=input, capture_output=True)
    if res.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {res.stderr.decode()}")
    return res.stdout.decode("utf-8", "replace")


def edit_file(wt: Path, path: str, kind: str, tag: str) -> None:
    """A real, deterministic edit: comment after the N-th function's '{', etc."""
    f = wt / path
    if kind == "newfile":
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("// SPDX-License-Identifier: GPL-2.0\n/* " + tag + " */\n#include \"kvm_util.h\"\n\n"
                     "int main(void)\n{\n\treturn 0;\n}\n")
        git(wt, "add", "--sparse", "-f", path)
        return
    if kind.startswith("rename:"):
        git(wt, "mv", "--sparse", path, kind.split(":", 1)[1])
        return
    op, n = kind.split(":")
    lines = f.read_text(errors="surrogateescape").split("\n")
    if op == "note":
        starts = [i for i, l in enumerate(lines) if l == "{"]
        at = starts[int(n) % len(starts)]
        lines[at + 1:at + 1] = [f"\t/* {tag}: keep this path cheap */"]
    elif op == "renote":
        starts = [i for i, l in enumerate(lines) if l == "{"]
        at = starts[int(n) % len(starts)] + 1
        assert "keep this path cheap" in lines[at], f"{path}: series 1 note missing"
        lines[at] = lines[at].replace("keep this path cheap", f"keep this path cheap ({tag})")
    elif op == "ret":
        rets = [i for i, l in enumerate(lines) if re.match(r"^\treturn [a-z_]+;$", l)]
        at = rets[int(n) % len(rets)]
        lines[at] = lines[at][:-1] + ";\t/* " + tag + " */"
    f.write_text("\n".join(lines), errors="surrogateescape")


def mail_to_patch(raw: str) -> dict:
    msg = email.message_from_string(raw, policy=email.policy.default)
    body = msg.get_content()
    message, _, diff = ("\n" + body).partition("\n---\n")
    name, addr = email.utils.parseaddr(str(msg["From"]))
    subject = re.sub(r"^\[[^\]]*\]\s*", "", " ".join(str(msg["Subject"]).split()))
    return {"msgid": str(msg["Message-ID"]).strip().strip("<>"), "author_name": name,
            "author_email": addr, "date": str(msg["Date"]), "subject": subject,
            "message": message.strip("\n"), "diff": diff}


def make_series(repo: Path) -> tuple[str, list[dict], list[str]]:
    """(base sha, patch dicts in chain order, touched paths); cached in var/bench/series."""
    cache = SERIES_DIR / "chain.json"
    base = gitrepo.resolve(repo, "master")
    if cache.exists():
        data = json.loads(cache.read_text())
        if data["base"] == base and data["spec"] == SERIES:
            return base, data["patches"], data["paths"]
    shutil.rmtree(SERIES_DIR, ignore_errors=True)
    SERIES_DIR.mkdir(parents=True)
    paths = sorted({p for _, pats in SERIES for _, edits in pats for p, _ in edits}
                   | {k.split(":", 1)[1] for _, pats in SERIES for _, edits in pats
                      for _, k in edits if k.startswith("rename:")})
    patches: list[dict] = []
    with gitrepo.worktree(repo, base, paths=paths) as wt:
        tick = 1704067200
        for s, (series, pats) in enumerate(SERIES, 1):
            start = git(wt, "rev-parse", "HEAD").strip()
            for p, (subject, edits) in enumerate(pats, 1):
                for path, kind in edits:
                    edit_file(wt, path, kind, f"bench {series} {p}")
                tick += 3600
                git(wt, "commit", "-q", "-a", "-m", f"{subject}\n\nA real edit made by bench/apply_bench.py.\n\n"
                    f"Signed-off-by: Bench Author <author@example.org>",
                    "--date", f"@{tick} +0000")
            out = SERIES_DIR / series
            git(wt, "format-patch", "-q", "--thread", "--binary", "-o", str(out), f"{start}..HEAD")
            for i, mbox in enumerate(sorted(out.glob("*.patch")), 1):
                patch = mail_to_patch(mbox.read_text(errors="surrogateescape"))
                patch["msgid"] = f"{series}-{i}@bench.example.org"
                patches.append(patch)
    cache.write_text(json.dumps({"base": base, "spec": SERIES, "patches": patches, "paths": paths}))
    return base, patches, paths


# ---------------------------------------------------------------- methods

def floor(repo: Path, base: str, steps: list[dict]) -> str:
    """Object I/O only: the least any in-process applier must do."""
    return gitrepo.object_io_floor(repo, base, steps)


def post_images(repo: Path, commits: list[str], patches: list[dict]) -> list[dict]:
    """Per patch: path -> (pre-image path, post-image bytes | None, mode), from the applied chain."""
    out = []
    for sha, patch in zip(commits, patches):
        step = {}
        for fp in parse_diff(patch["diff"]):
            if fp.old_path and (fp.is_rename or fp.is_delete):
                step[fp.old_path] = (fp.old_path, None, 0)
            if fp.new_path:
                parent = fp.new_path.rpartition("/")[0]
                entry = next(e for e in gitrepo.list_tree(repo, sha, parent) if e["path"] == fp.new_path)
                step[fp.new_path] = (fp.old_path, gitrepo.read_file(repo, sha, fp.new_path),
                                     int(entry["mode"], 8))
        out.append(step)
    return out


def apply_chain_warm(repo: Path, base: str, patches: list[dict]) -> str:
    res = gitrepo.apply_chain(repo, base, patches)
    assert res.status == "applied", res.failed
    return res.tree


def apply_chain_cold(repo: Path, base: str, patches: list[dict], pjson: Path) -> str:
    code = ("import json,sys; from untangle import gitrepo; "
            "r=gitrepo.apply_chain(sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))); "
            "print(r.tree if r.status=='applied' else r)")
    out = subprocess.run([sys.executable, "-c", code, str(repo), base, str(pjson)], cwd=ROOT,
                         capture_output=True, text=True, check=True, env={**ENV, "PYTHONPATH": str(ROOT)})
    return out.stdout.strip()


def worktree_am(repo: Path, base: str, mbox: Path, sparse_paths: list[str] | None) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="bench-am-"))
    wt = tmp / "wt"
    try:
        if sparse_paths:
            git(repo, "worktree", "add", "-q", "--detach", "--no-checkout", str(wt), base)
            git(wt, "sparse-checkout", "set", "--no-cone", *["/" + p for p in sparse_paths])
            git(wt, "checkout", "-q", "--detach", base)
            git(wt, "am", "-q", "-3", str(mbox))
        else:
            git(repo, "worktree", "add", "-q", "--detach", str(wt), base)
            git(wt, "am", "-q", str(mbox))
        return git(wt, "rev-parse", "HEAD^{tree}").strip()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=repo, env=ENV, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=repo, env=ENV, capture_output=True)


MAIL_DOMAIN = "bench.example.org"
LIST_ADDR = "bench-list@example.org"


def cover_msgid(series: str) -> str:
    return f"{series}-0@{MAIL_DOMAIN}"


def series_patch_files(series: str) -> list[Path]:
    return sorted((SERIES_DIR / series).glob("*.patch"))


def stable_patch_id(patch: Path) -> str:
    """`git patch-id --stable`: what b4 prep writes and public-inbox indexes as patchid:."""
    return git(SERIES_DIR, "patch-id", "--stable", input=patch.read_bytes()).split()[0]


def as_thread_reply(patch: Path, msgid: str, parent: str) -> str:
    """A format-patch file as the mail a list would carry: our Message-ID, threaded to the cover."""
    head, sep, body = patch.read_text(errors="surrogateescape").partition("\n\n")
    lines = [l for l in head.split("\n") if not l.startswith(("From ", "Message-Id:", "Message-ID:"))]
    lines += [f"To: {LIST_ADDR}", f"Message-Id: <{msgid}>", f"In-Reply-To: <{parent}>",
              f"References: <{parent}>"]
    return "\n".join(lines) + sep + body


def cover_letter(series: str, files: list[Path], base: str, prereqs: list[tuple[str, list[str]]]) -> str:
    """A b4-prep style cover: base-commit:, change-id:, then per earlier series (in apply
    order) its prerequisite-message-id: and the prerequisite-patch-id: of each of its patches,
    which is what `b4 send` expands a `message-id:` dependency into."""
    first = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.compat32)
    subjects = [re.sub(r"^\[[^\]]*\]\s*", "", " ".join(
        str(email.message_from_bytes(f.read_bytes(), policy=email.policy.compat32)["Subject"]).split()))
        for f in files]
    trailers = [f"base-commit: {base}", f"change-id: 20240101-{series}"]
    for mid, pids in prereqs:
        trailers.append(f"prerequisite-message-id: <{mid}>")
        trailers += [f"prerequisite-patch-id: {pid}" for pid in pids]
    return (f"From: {first['From']}\nDate: {first['Date']}\nSubject: [PATCH 0/{len(files)}] bench: {series}\n"
            f"To: {LIST_ADDR}\nMessage-Id: <{cover_msgid(series)}>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            f"The {series} series of the apply benchmark.\n\n---\n"
            + "".join(f"      {s}\n" for s in subjects)
            + "\n---\n" + "\n".join(trailers) + "\n\nBest regards,\n-- \nBench Author <author@example.org>\n")


def write_series_mails(out: Path, base: str) -> list[Path]:
    """One .eml per message of the three series (cover first), in chain order."""
    paths, prereqs = [], []
    for series, _ in SERIES:
        files = series_patch_files(series)
        cover = out / f"{series}-0.eml"
        cover.write_text(cover_letter(series, files, base, list(prereqs)), errors="surrogateescape")
        paths.append(cover)
        for i, f in enumerate(files, 1):
            eml = out / f"{series}-{i}.eml"
            eml.write_text(as_thread_reply(f, f"{series}-{i}@{MAIL_DOMAIN}", cover_msgid(series)),
                           errors="surrogateescape")
            paths.append(eml)
        prereqs.append((cover_msgid(series), [stable_patch_id(f) for f in files]))
    return paths


def b4_repo(tmp: Path, repo: Path, base: str) -> Path:
    """b4 wants a non-bare repository; this one borrows the objects of repo and
    has no checkout (b4 -H applies in its own sparse worktree)."""
    wt = tmp / "w"
    git(tmp, "init", "-q", str(wt))
    (wt / ".git" / "objects" / "info" / "alternates").write_text(str(repo / "objects") + "\n")
    git(wt, "update-ref", "refs/heads/master", base)
    return wt


def b4_env(tmp: Path, inbox_url: str | None = None) -> dict:
    """A private HOME, b4 cache and global gitconfig (so every run fetches afresh)."""
    cfg = "[user]\n\tname = Bench\n\temail = bench@example.org\n[b4]\n\tattestation-policy = off\n"
    if inbox_url:
        cfg += f"\tmidmask = {inbox_url}/%s\n\tlinkmask = {inbox_url}/%s\n"
    (tmp / "gitconfig").write_text(cfg)
    # NO_PROXY: a proxy from the environment must not stand between b4 and the local server.
    return {**ENV, "HOME": str(tmp), "XDG_CACHE_HOME": str(tmp / "cache"),
            "GIT_CONFIG_GLOBAL": str(tmp / "gitconfig"), "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}


def run_b4(args: list[str], wt: Path, env: dict) -> str:
    b4 = str(Path(sys.executable).with_name("b4"))
    res = subprocess.run([b4, *args], cwd=wt, env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"b4 {' '.join(args)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return res.stdout + res.stderr


def b4_shazam_inbox(repo: Path, base: str, inbox_url: str, npatches: int) -> str:
    """One `b4 shazam -H <last cover>`: b4 fetches the thread and, by the cover's
    prerequisite-patch-id: lines, the earlier series' patches from the server."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-b4pi-"))
    try:
        wt = b4_repo(tmp, repo, base)
        run_b4(["shazam", "--no-add-trailers", "-H", cover_msgid(SERIES[-1][0])], wt, b4_env(tmp, inbox_url))
        count = int(git(wt, "rev-list", "--count", f"{base}..FETCH_HEAD"))
        assert count == npatches, f"b4 applied {count} of {npatches} patches"
        return git(wt, "rev-parse", "FETCH_HEAD^{tree}").strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def b4_shazam_mboxes(repo: Path, base: str) -> str:
    """b4 shazam -H per series from local mboxes (no server), each on the previous result."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-b4-"))
    try:
        wt = b4_repo(tmp, repo, base)
        env = b4_env(tmp)
        for series, _ in SERIES:
            mbox = tmp / f"{series}.mbox"
            mbox.write_text("".join(p.read_text(errors="surrogateescape") for p in series_patch_files(series)),
                            errors="surrogateescape")
            run_b4(["shazam", "--no-add-trailers", "-m", str(mbox), "-H"], wt, env)
            git(wt, "update-ref", "refs/heads/master", "FETCH_HEAD")
        return git(wt, "rev-parse", "HEAD^{tree}").strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fresh_repo(repo: Path) -> Path:
    """An empty bare repo borrowing repo's objects (alternates), so every
    repetition writes its objects for the first time, as a first apply would."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-repo-"))
    git(tmp, "init", "-q", "--bare")
    (tmp / "objects" / "info" / "alternates").write_text(str(repo / "objects") + "\n")
    return tmp


def timed(methods: dict, repo: Path, reps: int, warmup: bool = False) -> dict[str, tuple[list[float], str]]:
    """Run each fn(fresh repo) reps times, interleaved so that load from other
    processes hits all methods alike; only fn itself is timed."""
    out = {name: ([], None) for name in methods}
    for rep in range(reps + (1 if warmup else 0)):
        for name, fn in methods.items():
            target = fresh_repo(repo)
            try:
                t = time.perf_counter()
                result = fn(target)
                elapsed = time.perf_counter() - t
            finally:
                shutil.rmtree(target, ignore_errors=True)
            if warmup and rep == 0:
                continue  # first round warms the page cache
            out[name][0].append(elapsed)
            out[name] = (out[name][0], result)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7, help="repetitions of the fast methods")
    ap.add_argument("--full-reps", type=int, default=2, help="repetitions of the worktree methods")
    ap.add_argument("--json", type=Path, default=BENCH / "apply-results.json")
    args = ap.parse_args()

    repo = Path(subprocess.run([str(ROOT / "scripts" / "make-kernel-tree")], check=True,
                               capture_output=True, text=True).stdout.strip().splitlines()[-1])
    base, patches, paths = make_series(repo)
    nfiles = int(git(repo, "ls-tree", "-r", "--name-only", base).count("\n"))
    mbox = SERIES_DIR / "chain.mbox"
    mbox.write_text("".join(p.read_text(errors="surrogateescape")
                            for s, _ in SERIES for p in sorted((SERIES_DIR / s).glob("*.patch"))),
                    errors="surrogateescape")
    pjson = SERIES_DIR / "patches.json"
    pjson.write_text(json.dumps(patches))
    print(f"tree: {repo} ({nfiles} files), chain: {len(patches)} patches in {len(SERIES)} series, "
          f"{sum(len(parse_diff(p['diff'])) for p in patches)} file diffs", flush=True)

    first = gitrepo.apply_chain(repo, base, patches)
    assert first.status == "applied", first.failed
    posts = post_images(repo, [a.commit for a in first.applied], patches)

    rows = timed({
        "floor (object I/O only)": lambda r: floor(r, base, posts),
        "apply_chain (warm process)": lambda r: apply_chain_warm(r, base, patches),
        "apply_chain (cold process)": lambda r: apply_chain_cold(r, base, patches, pjson),
    }, repo, args.reps, warmup=True)
    mail_dir = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    inbox = None
    try:
        # The server is set up once, untimed, as lore would be; b4 runs with a cold cache.
        inbox = start_inbox(write_series_mails(mail_dir, base), mail_dir)
        rows.update(timed({
            "sparse worktree + git am -3": lambda r: worktree_am(r, base, mbox, paths),
            "b4 shazam -H (public-inbox)": lambda r: b4_shazam_inbox(r, base, inbox.url, len(patches)),
            "b4 shazam -H x3 (local mbox)": lambda r: b4_shazam_mboxes(r, base),
            "full worktree + git am": lambda r: worktree_am(r, base, mbox, None),
        }, repo, args.full_reps))
    finally:
        if inbox is not None:
            inbox.stop()
        shutil.rmtree(mail_dir, ignore_errors=True)

    expected = first.tree
    report = {"tree_files": nfiles, "patches": len(patches), "results": {}}
    print(f"\n{'method':32} {'median s':>9} {'min s':>8} {'runs':>5}  same tree")
    for name, (times, tree) in rows.items():
        same = tree == expected
        report["results"][name] = {"median": statistics.median(times), "min": min(times), "runs": times,
                                   "same_tree": same}
        print(f"{name:32} {statistics.median(times):9.3f} {min(times):8.3f} {len(times):5}  {same}")
    fl = report["results"]["floor (object I/O only)"]["median"]
    ac = report["results"]["apply_chain (warm process)"]["median"]
    print(f"\napply_chain / floor = {ac / fl:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
