"""Draw docs/deploy.svg: the hosts of a split deployment and what crosses between them.

  .venv/bin/python docs/deploy_picture.py          # rewrite docs/deploy.svg
  .venv/bin/python docs/deploy_picture.py --check  # exit 1 if the picture is out of date

The worker hosts are the roles of reviewapp/tasknames.py: the picture is drawn from it.
"""
from __future__ import annotations

import sys
from html import escape
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from reviewapp.tasknames import ROLES  # noqa: E402

SVG = Path(__file__).resolve().parent / "deploy.svg"

NEEDS = {
    "ingest": ["archives (lore, public-inbox)", "mirror: merged, MAINTAINERS"],
    "apply": ["tree mirrors (cache)", "scale: --scale apply=N"],
    "kernel": ["many cores, KVM if any", "kernel build cache"],
    "mail": ["the SMTP server"],
}
W, H = 900, 520


def _box(x, y, w, h, title, lines, fill):
    out = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#555"/>',
           f'<text x="{x + w / 2}" y="{y + 20}" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    for i, line in enumerate(lines):
        out.append(f'<text x="{x + w / 2}" y="{y + 40 + 15 * i}" text-anchor="middle">{escape(line)}</text>')
    return out


def _arrow(x1, y1, x2, y2, label=""):
    out = [f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" marker-end="url(#a)"/>']
    if label:
        out.append(f'<text x="{(x1 + x2) / 2 + 6}" y="{(y1 + y2) / 2}" font-size="10" fill="#333">{escape(label)}</text>')
    return out


def render() -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="11">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    out += _box(40, 30, 250, 95, "web host", ["gunicorn: pages, API, git smart HTTP", "own tree mirrors (a cache)",
                                              "chains imported from bundles"], "#fbe9ec")
    out += _box(330, 30, 240, 95, "shared: PostgreSQL", ["every row; ChainBundle (a run's", "commits), SuiteArtifact,",
                                                        "suite logs and TAP"], "#e9f5ea")
    out += _box(610, 30, 250, 95, "shared: broker (Redis)", ["queues per role:", " ".join(ROLES),
                                                            "(REVIEWAPP_QUEUE_PREFIX)"], "#e9f5ea")
    n = len(ROLES)
    bw = (W - 80 - (n - 1) * 20) / n
    for i, role in enumerate(ROLES):
        x = 40 + i * (bw + 20)
        out += _box(x, 250, bw, 95, f"{role} worker host(s)", [f"celery ... -Q {role}"] + NEEDS.get(role, []),
                    "#e8f0fb")
        out += _arrow(x + bw / 2, 250, 450, 126, "rows" if i == 0 else "")
        out += _arrow(x + bw / 2 + 10, 250, 735, 126, "tasks" if i == n - 1 else "")
    out += _arrow(165, 126, 330, 78, "")
    out += _arrow(165, 126, 610, 100, "")
    out += _box(40, 410, 380, 80, "outside", ["kernel trees (git.kernel.org or a local copy:", "REVIEWAPP_GIT_REFERENCES)",
                                              "lore / public-inbox archives, SMTP"], "#f4f4f4")
    out += _box(480, 410, 380, 80, "per host, never shared", ["REVIEWAPP_DATA_DIR: mirrors, scratch worktrees,",
                                                             "suite work dirs; losing it loses only time"], "#fdf1e3")
    out.append("</svg>\n")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not SVG.exists() or SVG.read_text() != text:
            print(f"{SVG} is out of date: run docs/deploy_picture.py", file=sys.stderr)
            return 1
        print(f"{SVG.name} is up to date")
        return 0
    SVG.write_text(text)
    print(f"wrote {SVG}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
