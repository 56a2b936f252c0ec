"""untangle.maintainers: MAINTAINERS as get_maintainer.pl reads it (checked against the
script itself on a real tree in tests/integration/test_maintainers_61.py)."""
from untangle import maintainers as mt

TEXT = """\
List of maintainers
===================

MEMORY MANAGEMENT
M:	Andrew Morton <akpm@linux-foundation.org>
L:	linux-mm@kvack.org
S:	Maintained
F:	include/linux/mm.h
F:	mm/

USERFAULTFD
M:	Peter Xu <peterx@redhat.com>
R:	"Liam R. Howlett" <Liam.Howlett@oracle.com>
L:	linux-mm@kvack.org
S:	Maintained
F:	mm/userfaultfd.c
F:	fs/userfaultfd.c
X:	mm/userfaultfd-old.c

SELFTESTS
M:	Shuah Khan <shuah@kernel.org>
L:	linux-kselftest@vger.kernel.org
L:	private@example.org (subscribers-only)
S:	Maintained
F:	tools/testing/selftests/
N:	selftests

KVM GUEST MEMFD
M:	Old Address <old@example.org>
S:	Supported
F:	virt/kvm/guest_mem*.c
K:	\\bguest_memfd\\b

THE REST
M:	Linus Torvalds <torvalds@linux-foundation.org>
L:	linux-kernel@vger.kernel.org
S:	Buried alive in reporters
F:	*
F:	*/
"""

MAILMAP = "New Address <new@example.org> <old@example.org>\n"


def names(found):
    return [e.formatted() for e in found]


def m():
    return mt.Maintainers(TEXT, mt.Mailmap(MAILMAP), dirs=["mm", "fs", "virt", "virt/kvm"])


def test_the_most_specific_section_comes_first_and_lists_follow_people():
    assert names(m().expected(["mm/userfaultfd.c"])) == [
        "Peter Xu <peterx@redhat.com>", '"Liam R. Howlett" <Liam.Howlett@oracle.com>',
        "Andrew Morton <akpm@linux-foundation.org>", "linux-mm@kvack.org", "linux-kernel@vger.kernel.org"]


def test_the_chief_penguin_is_left_out_but_his_list_stays():
    assert names(m().expected(["README"])) == ["linux-kernel@vger.kernel.org"]


def test_an_excluded_file_skips_the_section():
    assert "Peter Xu <peterx@redhat.com>" not in names(m().expected(["mm/userfaultfd-old.c"]))


def test_a_file_pattern_without_a_slash_matches_only_at_its_depth():
    assert "Andrew Morton <akpm@linux-foundation.org>" not in names(m().expected(["include/linux/mm.h/x"]))
    assert "Andrew Morton <akpm@linux-foundation.org>" in names(m().expected(["include/linux/mm.h"]))


def test_n_regex_and_subscribers_only_lists():
    found = names(m().expected(["lib/selftests_helper.c"]))
    assert "Shuah Khan <shuah@kernel.org>" in found and "private@example.org" not in found


def test_a_keyword_in_the_text_brings_its_section_and_the_mailmap_renames_people():
    found = m().expected(["mm/shmem.c"], lambda: ["+ return kvm_gmem(guest_memfd) ;"])
    assert "New Address <new@example.org>" in names(found)
    assert names(m().expected(["virt/kvm/guest_memfd.c"]))[0] == "New Address <new@example.org>"


def test_people_are_named_once_by_address_or_name():
    found = m().expected(["mm/userfaultfd.c", "fs/userfaultfd.c", "mm/shmem.c"])
    assert len(names(found)) == len(set(names(found)))
    assert [e.role for e in found if e.email == "peterx@redhat.com"] == ["maintainer"]
    assert next(e for e in found if e.email == "Liam.Howlett@oracle.com").role == "reviewer"


def test_a_yaml_binding_names_its_own_maintainers():
    text = "maintainers:\n  - Jane Q. Binding <jane@example.org>\n"
    found = m().for_files(["Documentation/devicetree/x.yaml"], lambda p: text)
    assert "Jane Q. Binding <jane@example.org>" in names(found) or '"Jane Q. Binding" <jane@example.org>' in names(found)


def test_a_patch_keyword_lines_are_its_message_and_its_changed_lines():
    lines = mt.patch_keyword_lines("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n ctx\n", "subject")
    assert lines == ["subject", "-old", "+new"]
