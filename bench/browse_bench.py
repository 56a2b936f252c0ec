"""Benchmark: the consolidated-tree pages on a kernel-sized tree.

    .venv/bin/python bench/browse_bench.py [--reps N] [--json PATH]

Uses the tree and the 20-patch, 3-series chain of bench/apply_bench.py (built once
under var/bench/ by scripts/make-kernel-tree and apply_bench.make_series). In a
throw-away database and data dir it ingests the series' real `git format-patch`
mails, applies them into a mirror that borrows the kernel's objects (alternates,
nothing copied) and records the ApplyRun. Then it times, for the Django view end
to end (test client: URL routing, queries, git, Pygments, template) and for the
service calls alone:

  directory listing   the root, mm/ (touched by the chain) and the largest directory
  file + provenance   the touched file closest to 5,000 lines, and the largest one

"cold" clears every memo (lru caches keyed by shas) before each request, as the
first visit after a deploy; "warm" repeats the request in the same process.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOALS = {"listing": 0.300, "file": 1.0}


def setup_django(tmp: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["REVIEWAPP_DATA_DIR"] = str(tmp / "data")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ["DEBUG"] = "false"
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)


def kernel_tree() -> Path:
    out = subprocess.run([str(ROOT / "scripts" / "make-kernel-tree")], check=True, capture_output=True,
                         text=True).stdout
    return Path(out.strip().splitlines()[-1])


def build_run(kernel: Path, data_dir: Path):
    """Ingest the bench series' mails, apply them in a borrowing mirror, record the run."""
    from bench import apply_bench
    from reviewapp.models import ApplyRun, Revision, Tree
    from reviewapp.services.apply import patch_dict, patches_of
    from reviewapp.services.ingest import ingest
    from untangle import gitrepo
    from untangle.mbox import messages_from_path

    base, _, _ = apply_bench.make_series(kernel)
    mirror = data_dir / "mirrors" / "bench.git"
    mirror.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(mirror)], check=True)
    (mirror / "objects" / "info" / "alternates").write_text(str(kernel / "objects") + "\n")
    subprocess.run(["git", "update-ref", "refs/heads/master", base], cwd=mirror, check=True)
    tree = Tree.objects.create(name="bench", source=str(kernel), mirror_path=str(mirror), state="ready")
    revs = []
    for series, _ in apply_bench.SERIES:
        files = sorted((apply_bench.SERIES_DIR / series).glob("*.patch"))
        for f in files:
            ingest(messages_from_path(f))
        first = subprocess.run(["grep", "-m1", "-i", "^Message-ID:", str(files[0])], capture_output=True,
                               text=True).stdout.split(":", 1)[1].strip().strip("<>")
        revs.append(Revision.objects.get(patches__message__msgid=first))
    patches = patches_of(revs)
    res = gitrepo.apply_chain(mirror, base, [patch_dict(p) for p in patches], ref="bench")
    assert res.status == "applied", res.failed
    return ApplyRun.objects.create(tree=tree, root=revs[-1], status=ApplyRun.APPLIED,
                                   chain=[r.msgid for r in revs], base=base, head=res.head,
                                   tree_sha=res.tree, applied=[{"msgid": a.msgid, "commit": a.commit} for a in res.applied], total=len(patches),
                                   progress=len(patches))


def clear_memos() -> None:
    from reviewapp.services import provenance as prov
    for fn in (prov._listing, prov._touched, prov._changed, prov._blame, prov._diff):
        fn.cache_clear()


def timed(fn, reps: int, cold: bool) -> list[float]:
    out = []
    for _ in range(reps):
        if cold:
            clear_memos()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def pick_files(chain) -> tuple[tuple[str, int], tuple[str, int]]:
    """(the touched file closest to 5,000 lines, the largest touched file), with line counts."""
    from reviewapp.services import provenance as prov
    sizes = []
    for path in prov.touched_paths(chain):
        try:
            text, _ = prov.read_text(chain, path)
        except prov.BrowseError:
            continue
        if text is not None:
            sizes.append((path, text.count("\n")))
    return min(sizes, key=lambda s: abs(s[1] - 5000)), max(sizes, key=lambda s: s[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "browse-results.json")
    ap.add_argument("--big-dir", default="arch/arm/boot/dts", help="a large directory to list")
    args = ap.parse_args()
    kernel = kernel_tree()
    tmp = Path(tempfile.mkdtemp(prefix="browse-bench-"))
    try:
        setup_django(tmp)
        run_bench(kernel, tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_bench(kernel: Path, tmp: Path, args) -> None:
    from django.test import Client
    from reviewapp.services import provenance as prov
    from untangle import gitrepo

    run = build_run(kernel, tmp / "data")
    chain = prov.load_chain(run)
    (mid, mid_lines), (big, big_lines) = pick_files(chain)
    nfiles = int(subprocess.run(["git", "ls-tree", "-r", "--name-only", chain.head], cwd=chain.repo,
                                capture_output=True, text=True).stdout.count("\n"))
    big_dir_n = len(gitrepo.list_tree(chain.repo, chain.head, args.big_dir))
    client = Client()
    owners = prov.line_owners(chain, mid)
    assert len(owners) == mid_lines and any(owners), "the file must carry chain lines"
    page = client.get(f"/tree/{run.id}/{mid}")
    assert page.status_code == 200 and page.content.count(b'<tr id="L') == mid_lines
    print(f"tree: {nfiles} files; chain: {len(chain.patches)} patches in {len(chain.revisions)} series; "
          f"file {mid} ({mid_lines} lines, {sum(1 for o in owners if o)} from the chain); "
          f"largest touched {big} ({big_lines} lines); {args.big_dir}: {big_dir_n} entries", flush=True)

    def view(url):
        def go():
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
        return go

    cases = [
        ("listing", "view: /tree/<run>/ (root)", view(f"/tree/{run.id}/")),
        ("listing", "view: /tree/<run>/mm/", view(f"/tree/{run.id}/mm/")),
        ("listing", "view: /tree/<run>/mm/?changed=1", view(f"/tree/{run.id}/mm/?changed=1")),
        ("listing", f"view: /tree/<run>/{args.big_dir}/ ({big_dir_n} entries)", view(f"/tree/{run.id}/{args.big_dir}/")),
        ("listing", "service: listing(root)", lambda: prov.listing(chain, "")),
        ("listing", f"service: listing({args.big_dir})", lambda: prov.listing(chain, args.big_dir)),
        ("file", f"view: {mid} ({mid_lines} lines)", view(f"/tree/{run.id}/{mid}")),
        ("file", f"view by head sha: {mid}", view(f"/tree/h/{chain.head}/{mid}")),
        ("file", f"service: line_owners({mid})", lambda: prov.line_owners(chain, mid)),
        ("file", f"service: highlight({mid})", lambda: prov.highlight(prov.read_text(chain, mid)[0], mid)),
        ("file", f"view: {big} ({big_lines} lines)", view(f"/tree/{run.id}/{big}")),
    ]
    report = {"tree_files": nfiles, "patches": len(chain.patches), "file": mid, "file_lines": mid_lines,
              "big_file": big, "big_file_lines": big_lines, "results": []}
    print(f"\n{'case':58} {'cold med':>9} {'warm med':>9} {'cold max':>9}  goal")
    for kind, name, fn in cases:
        fn()  # one untimed call: imports, template compilation, page cache
        cold = timed(fn, args.reps, cold=True)
        warm = timed(fn, args.reps, cold=False)
        ok = statistics.median(cold) < GOALS[kind]
        report["results"].append({"kind": kind, "case": name, "cold": cold, "warm": warm,
                                  "cold_median": statistics.median(cold), "warm_median": statistics.median(warm),
                                  "goal": GOALS[kind], "met": ok})
        print(f"{name:58} {statistics.median(cold):9.3f} {statistics.median(warm):9.3f} {max(cold):9.3f}  "
              f"<{GOALS[kind]}s {'ok' if ok else 'MISSED'}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
