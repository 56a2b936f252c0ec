"""Made-up mail of the shape b4 sends (2023 on): covers carrying base-commit, change-id,
prerequisite-change-id and prerequisite-patch-id lines that name patches of earlier series.
The kselftest archive (2019-2021) has almost none of these; 2025 lists have many, and each
one is a patch-id lookup for the graphs (issue 20 point 1).

  .venv/bin/python bench/b4_mail.py OUT.mbox [--series 600] [--patches 3] [--seed 1]

A share of the series (--prereqs, default 0.3) names 1-3 patches of up to 3 of the 10 series
before it (so chains form), by their real stable patch-ids (untangle.patchid, as b4 computes
them), half of them as prerequisite-change-id too. Paths are real kernel paths; a tenth of the series touch the
same few files.
"""
import argparse
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from untangle.patchid import patch_id  # noqa: E402

PATHS = ["tools/testing/selftests/kvm/lib/kvm_util.c", "tools/testing/selftests/mm/uffd-unit-tests.c",
         "mm/userfaultfd.c", "mm/memory.c", "virt/kvm/guest_memfd.c", "include/linux/kvm_host.h",
         "tools/testing/selftests/net/tcp_ao/lib/sock.c", "lib/kunit/test.c", "fs/proc/base.c",
         "kernel/sched/fair.c", "drivers/gpu/drm/drm_gem.c", "arch/x86/kvm/mmu/mmu.c"]
SHARED = ["mm/userfaultfd.c", "include/linux/mm.h"]


def _diff(path: str, k: int, i: int, rng: random.Random) -> str:
    old, new = f"{rng.getrandbits(28):07x}", f"{rng.getrandbits(28):07x}"
    return (f"diff --git a/{path} b/{path}\nindex {old}..{new} 100644\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{10 + i},3 +{10 + i},4 @@ static int f{k}(void)\n \tint a = {k};\n"
            f"+\tint b{i} = a + {i};  /* series {k} patch {i} */\n \treturn a;\n }}\n")


def write(out: Path, series: int, patches: int, seed: int, prereqs: float = 0.3) -> int:
    rng = random.Random(seed)
    made: list[dict] = []  # per series: change-id, version, patch-ids
    written = 0
    with open(out, "w") as f:
        for k in range(series):
            who = f"Dev {k % 40} <dev{k % 40}@example.org>"
            version = rng.choice([1, 1, 2, 3])
            change = f"20250{1 + k % 9}01-topic-{k}-{rng.getrandbits(24):06x}"
            stem = f"{change}-v{version}"
            day = 1 + k % 28
            paths = [rng.choice(SHARED) if rng.random() < 0.1 else rng.choice(PATHS) for _ in range(patches)]
            diffs = [_diff(p, k, i, rng) for i, p in enumerate(paths, 1)]
            lines = [f"base-commit: {rng.getrandbits(160):040x}", f"change-id: {change}"]
            wanted = rng.randint(1, 3) if rng.random() < prereqs else 0
            for before in rng.sample(made[-10:], min(len(made[-10:]), wanted)):
                if rng.random() < 0.5:
                    lines.append(f"prerequisite-change-id: {before['change']}:v{before['version']}")
                for pid in rng.sample(before["pids"], rng.randint(1, len(before["pids"]))):
                    lines.append(f"prerequisite-patch-id: {pid}")
            cover_id = f"{stem}-0-{k}@example.org"
            v = f" v{version}" if version > 1 else ""
            f.write(_mail(cover_id, who, f"[PATCH{v} 0/{patches}] area: made-up series {k}", day,
                          f"Series {k} does a thing.\n\n---\n" + "\n".join(lines) +
                          f"\n\nBest regards,\n-- \n{who}\n", None))
            for i, d in enumerate(diffs, 1):
                f.write(_mail(f"{stem}-{i}-{k}@example.org", who,
                              f"[PATCH{v} {i}/{patches}] area: change {i} of series {k}", day,
                              f"Change {i}.\n\nSigned-off-by: {who}\n---\n {paths[i - 1]} | 1 +\n\n{d}-- \n2.47.0\n",
                              cover_id))
            written += 1 + patches
            made.append({"change": change, "version": version,
                         "pids": [patch_id(d) for d in diffs]})
    return written


def _mail(msgid: str, who: str, subject: str, day: int, body: str, reply_to: str | None) -> str:
    head = [f"From: {who}", f"Subject: {subject}", f"Date: Mon, {day:02d} Sep 2025 10:00:00 +0000",
            f"Message-Id: <{msgid}>"]
    if reply_to:
        head += [f"In-Reply-To: <{reply_to}>", f"References: <{reply_to}>"]
    return "From mboxrd@z Thu Jan  1 00:00:00 1970\n" + "\n".join(head) + "\n\n" + body + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--series", type=int, default=600)
    ap.add_argument("--patches", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prereqs", type=float, default=0.3, help="share of series naming prerequisites")
    args = ap.parse_args()
    print(f"{write(args.out, args.series, args.patches, args.seed, args.prereqs)} mails in {args.out}")


if __name__ == "__main__":
    main()
