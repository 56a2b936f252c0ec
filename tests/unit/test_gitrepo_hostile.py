"""Hostile patches at the git layer: refused with the patch named and the
reason, before git sees them; bounded memory for binary hunks."""
from __future__ import annotations

import base64
import zlib
from pathlib import Path

import pytest

from tests.unit.test_gitrepo import commit, lines, new_repo
from untangle import gitrepo
from untangle.gitrepo_patch import PatchError, parse_diff


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return new_repo(tmp_path / "repo")


def good_patch(k: int) -> dict:
    return {"msgid": f"p{k}@x", "subject": f"p{k}", "author_name": "A", "author_email": "a@x",
            "diff": f"diff --git a/f{k} b/f{k}\nnew file mode 100644\n--- /dev/null\n+++ b/f{k}\n"
                    f"@@ -0,0 +1 @@\n+{k}\n"}


def chain_with_third(bad: dict) -> list[dict]:
    return [good_patch(1), good_patch(2), {**good_patch(3), **bad}, good_patch(4)]


def binary_literal(payload_deflated: bytes, declared: int) -> str:
    out = []
    for i in range(0, len(payload_deflated), 52):
        chunk = payload_deflated[i:i + 52]
        n = len(chunk)
        c = chr(ord("A") + n - 1) if n <= 26 else chr(ord("a") + n - 27)
        pad = chunk + b"\0" * (-n % 4)
        out.append(c + base64.b85encode(pad).decode())
    return ("diff --git a/blob b/blob\nnew file mode 100644\nindex 0000000..1111111\n"
            f"GIT binary patch\nliteral {declared}\n" + "\n".join(out) + "\n\nliteral 0\nHcmV?d00001\n\n")


@pytest.mark.parametrize("mode", ["160000", "040000", "100666", "abc", "\xff\xfe"])
def test_a_mode_git_does_not_store_for_a_blob_fails_patch_3_of_4(repo: Path, mode: str):
    base = commit(repo, "base", {"a": lines(3)})
    diff = (f"diff --git a/sub b/sub\nnew file mode {mode}\nindex 0000000..1234567\n"
            "--- /dev/null\n+++ b/sub\n@@ -0,0 +1 @@\n+Subproject commit 1234\n")
    res = gitrepo.apply_chain(repo, base, chain_with_third({"diff": diff}))
    assert res.status == "failed"
    assert res.failed.msgid == "p3@x"
    assert res.failed.error.startswith("patch 3 of 4 <p3@x>")
    assert "invalid file mode" in res.failed.error
    assert len(res.applied) == 2


@pytest.mark.parametrize("header", [
    "diff --git \n", "diff --git a/x\n", 'diff --git "a/\\777" b/x\n', "diff --git a/\0 b/\0\n",
    "diff --git a/../../etc/passwd b/../../etc/passwd\n", "diff --git a/x//y b/x//y\n",
])
def test_an_invalid_diff_git_header_fails_with_the_patch_named(repo: Path, header: str):
    base = commit(repo, "base", {"a": lines(3)})
    diff = header + "old mode 100644\nnew mode 100755\n"
    res = gitrepo.apply_chain(repo, base, chain_with_third({"diff": diff}))
    assert res.status == "failed", res
    assert res.failed.msgid == "p3@x"
    assert res.failed.error.startswith("patch 3 of 4")


def test_author_name_with_angle_bracket_is_a_bad_author_not_a_bad_date(repo: Path):
    base = commit(repo, "base", {"a": lines(3)})
    res = gitrepo.apply_chain(repo, base, chain_with_third(
        {"author_name": "Eve <evil", "date": "Mon, 1 Jan 2024 00:00:00 +0000"}))
    assert res.status == "failed"
    err = res.failed.error
    assert err.startswith("patch 3 of 4") and "bad author" in err and "bad date" not in err


def test_binary_bomb_is_refused_while_inflating_not_after(repo: Path):
    bomb = zlib.compress(b"\0" * (64 << 20), 9)  # ~64 KB deflated, 64 MB inflated
    diff = binary_literal(bomb, 1000)  # declares a small size, lies
    with pytest.raises(PatchError, match="inflates to more than 1048576 bytes"):
        parse_diff(diff, max_binary=1 << 20)
    base = commit(repo, "base", {"a": lines(3)})
    res = gitrepo.apply_chain(repo, base, chain_with_third({"diff": diff}), max_binary=1 << 20)
    assert res.status == "failed" and res.failed.error.startswith("patch 3 of 4")
    assert "REVIEWAPP_BINARY_PATCH_MAX_BYTES" in res.failed.error


def test_binary_hunk_declaring_a_huge_size_is_refused_before_inflating():
    diff = binary_literal(zlib.compress(b"x"), 10 ** 12)
    with pytest.raises(PatchError, match="larger than"):
        parse_diff(diff, max_binary=1 << 20)


def test_binary_hunk_under_the_cap_still_applies(repo: Path):
    data = bytes(range(256)) * 40
    diff = binary_literal(zlib.compress(data), len(data))
    base = commit(repo, "base", {"a": lines(3)})
    res = gitrepo.apply_chain(repo, base, [{**good_patch(1), "diff": diff}],
                              max_binary=1 << 20)
    assert res.status == "applied", res.failed
    assert gitrepo.read_file(repo, res.head, "blob") == data
