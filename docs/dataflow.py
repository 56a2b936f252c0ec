"""Draw docs/dataflow.svg: the data flow of reviewapp, stage by stage, layer by layer.

  .venv/bin/python docs/dataflow.py          # rewrite docs/dataflow.svg
  .venv/bin/python docs/dataflow.py --check  # exit 1 if the picture is out of date

Rows are the stages mail goes through; columns are the layers (the import-linter
contracts in .importlinter keep them one-way). Every module of untangle/,
reviewapp/services/ and reviewapp/web/, and every worker task, sits in one cell:
tests/unit/test_dataflow_picture.py fails when a module or task is added and not
drawn here, so the picture keeps matching the code.
"""
from __future__ import annotations

import sys
from html import escape
from pathlib import Path

HERE = Path(__file__).resolve().parent
SVG = HERE / "dataflow.svg"

COLUMNS = [
    ("run by: worker/ task", "sent via reviewapp/dispatch.py"),
    ("outside", "what comes in / goes out"),
    ("untangle/", "plain Python: no Django"),
    ("reviewapp/services/", "the writes"),
    ("database rows", "reviewapp/models.py"),
    ("reads", "selectors.py, web/, api/"),
]

# stage -> one cell per column (lines of text). Order of rows = order of the data flow.
# The first cell names the worker task (or beat entry) that calls the row's service.
STAGES = [
    ('fetch & sync', [
        ['fetch_thread', 'sync_list', 'sync_lists (beat)'],
        ['lore.kernel.org (HTTP)', 'public-inbox git epochs', 'mbox archives'],
        ['lore.py (only b4/liblore)', 'gitinbox.py (git layer)', 'mbox.py'],
        ['fetch.py', 'sync.py'],
        ['FetchRequest', 'SyncRun, SyncCursor'],
        ['search (GET looks up)', 'fetch status'],
    ]),
    ('ingest', [
        ['(within fetch / sync tasks)', 'manage.py ingest'],
        ['raw mails'],
        ['mail.py, subject.py', 'patchid.py, grouping.py', 'deps.py (edges in mail)', 'msgid.py, address.py'],
        ['ingest.py', 'demo.py', 'dbstats.py (after bulk writes)'],
        ['Message, Series, Revision', 'Patch, PatchFile, Trailer', 'Dependency'],
        ['series list (paged)', 'series page', 'pagecache.py (kept until a write)'],
    ]),
    ('graph', [
        ['recompute_graphs', 'compute_missing_graphs (beat)', 'fetch_graph'],
        [],
        ['graph.py: Node, Edge ->', 'Graph, Problem, NotNeeded'],
        ['graph.py (collects, stores)'],
        ['GraphSnapshot'],
        ['graph page (stored snapshot)', 'wording.py (sentences)'],
    ]),
    ('apply', [
        ['fetch_tree', 'apply_run', 'reap_leases (beat)'],
        ['kernel trees (git)'],
        ['gitrepo.py (front door)', 'gitrepo_repo, gitrepo_mirror', 'gitrepo_base, gitrepo_apply', 'gitrepo_patch'],
        ['trees.py (per-host mirrors)', 'apply.py', 'merged.py', 'leases.py', 'results.py (to other hosts)'],
        ['Tree, ApplyRun', 'ChainBundle, SuiteArtifact'],
        ['apply run page'],
    ]),
    ('browse', [
        [],
        [],
        ['gitrepo_blame', 'gitrepo_read', 'ammbox.py'],
        ['provenance.py'],
        ['(git objects, memoised)'],
        ['tree / file / diff pages', 'range-diff (existing chains)', 'mbox API'],
    ]),
    ('suite', [
        ['run_suite'],
        ['QEMU, bubblewrap'],
        ['suite.py, tap.py', 'kbuild.py, sandbox.py', 'kconfig/'],
        ['suites.py'],
        ['Suite, SuiteRun'],
        ['suite run page'],
    ]),
    ('review', [
        ['recompute_reviews', 'compute_missing_reviews (beat)'],
        ['MAINTAINERS, .mailmap (trees)'],
        ['review.py (b4 trailer rules)', 'replies.py (comments, objections)', 'maintainers.py'],
        ['review.py (batches, stores)'],
        ['ReviewState, ReviewPerson,', 'ReviewQueueEntry'],
        ['review API, manage.py review', 'web/review.py: /review/ queues,', 'series and graph page panels'],
    ]),
    ('in flight', [
        ['compute_inflight (after a sync)'],
        ['the list\'s tree (mirror)'],
        ['inflight.py (pairs by shared files)', 'gitrepo_merge (merges in memory)'],
        ['inflight.py (apply, compare)'],
        ['InflightState, InflightConflict'],
        ['/lists/<name>/inflight, conflict page,', 'series page line, API, manage.py inflight'],
    ]),
    ('digest', [
        ['send_due_digests (beat)'],
        ['SMTP'],
        ['digest.py'],
        ['digests.py'],
        ['Subscription, Digest'],
        ['digest preview, unsubscribe'],
    ]),
]

COL_W, GAP, LINE_H, PAD, HEAD_H, LABEL_W = 190, 26, 15, 8, 46, 92
FILL = ["#efe6f7", "#f4f4f4", "#e8f0fb", "#fdf1e3", "#e9f5ea", "#fbe9ec"]


def _row_height(cells) -> int:
    return max(1, max(len(c) for c in cells)) * LINE_H + 2 * PAD


def render() -> str:
    width = LABEL_W + len(COLUMNS) * (COL_W + GAP)
    height = HEAD_H + sum(_row_height(c) + GAP // 2 for _, c in STAGES) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, (title, sub) in enumerate(COLUMNS):
        x = LABEL_W + i * (COL_W + GAP)
        out.append(f'<text x="{x + COL_W / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
        out.append(f'<text x="{x + COL_W / 2}" y="33" text-anchor="middle" fill="#555">{escape(sub)}</text>')
    y = HEAD_H
    for stage, cells in STAGES:
        h = _row_height(cells)
        out.append(f'<text x="6" y="{y + h / 2 + 4}" font-weight="bold">{escape(stage)}</text>')
        boxes = []
        for i, lines in enumerate(cells):
            x = LABEL_W + i * (COL_W + GAP)
            if not lines:
                continue
            if i > 0:  # the worker column calls; the arrows follow the data
                boxes.append(i)
            out.append(f'<rect x="{x}" y="{y}" width="{COL_W}" height="{h}" rx="5" fill="{FILL[i]}" stroke="#999"/>')
            for k, line in enumerate(lines):
                out.append(f'<text x="{x + 6}" y="{y + PAD + (k + 1) * LINE_H - 3}">{escape(line)}</text>')
        for a, b in zip(boxes, boxes[1:]):  # data moves to the right along a stage
            x1 = LABEL_W + a * (COL_W + GAP) + COL_W
            x2 = LABEL_W + b * (COL_W + GAP)
            out.append(f'<line x1="{x1}" y1="{y + h / 2}" x2="{x2 - 1}" y2="{y + h / 2}" stroke="#555" '
                       'marker-end="url(#a)"/>')
        y += h + GAP // 2
    out.append(f'<text x="6" y="{height - 14}" fill="#555">Arrows: the order data moves in a stage. '
               'Services never import worker (tasks go out through dispatch.py); selectors never import '
               'services; GET requests only read stored rows. Generated by docs/dataflow.py.</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        same = SVG.exists() and SVG.read_text() == text
        print("docs/dataflow.svg is " + ("up to date" if same else "out of date: run docs/dataflow.py"))
        return 0 if same else 1
    SVG.write_text(text)
    print(f"wrote {SVG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
