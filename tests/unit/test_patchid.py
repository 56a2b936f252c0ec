import subprocess

import pytest

from untangle import mail, mbox
from untangle.patchid import patch_id

from tests.support.shared import LORE, require


def _git_patch_id(text: str) -> str | None:
    out = subprocess.run(["git", "patch-id", "--stable"], input=text.encode(), capture_output=True,
                         check=True).stdout.decode().split()
    return out[0] if out else None


def _patches(name):
    return [m for m in (mail.parse(r) for r in mbox.messages_from_path(require(LORE / name))) if m.kind == "patch"]


@pytest.mark.parametrize("name", ["kvm-gmem-uffd-minor-v3.mbox", "gmem-direct-map-removal-v4.mbox",
                                  "gmem-direct-map-removal-rfc-v3.mbox"])
def test_patch_id_equals_git_patch_id_stable(name):
    for p in _patches(name):
        assert p.patch_id == _git_patch_id(p.diff), p.msgid


def test_unchanged_patches_keep_their_id_across_revisions_even_quoted_printable():
    v7 = {p.number: p.patch_id[:12] for p in _patches("gmem-direct-map-removal-v7-split-send.mbox")}
    v8 = {p.number: p.patch_id[:12] for p in _patches("gmem-direct-map-removal-v8-qp.mbox")}
    v4 = {p.number: p.patch_id[:12] for p in _patches("gmem-direct-map-removal-v4.mbox")}
    assert v7[1] == "124558e64ccf" and v7[3] == "1db1d7dc39dd"
    assert v4[7] == v7[8] == "8bc814a4c514"
    assert v7[7] == v8[8] == "d85ac941adbc"
    assert v7[11] == v8[12] == "1fdd18c612e0"
    assert v7[2] == v8[2] == "875737cd373b"
    assert v7[4] == v8[4] == "e2a6abc02ff5"


def test_file_order_does_not_change_a_stable_patch_id():
    a = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
    b = "diff --git a/y b/y\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-c\n+d\n"
    assert patch_id(a + b) == patch_id(b + a) == _git_patch_id(a + b)


def test_whitespace_and_line_numbers_do_not_matter():
    a = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a b\n+b\n"
    b = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -10 +10 @@\n-ab\n+ b\n"
    assert patch_id(a) == patch_id(b)


def test_text_without_a_diff_has_no_patch_id():
    assert patch_id("just a cover letter\n") is None
