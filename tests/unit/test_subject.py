import pytest

from untangle.subject import parse


@pytest.mark.parametrize("raw, version, number, total, rfc, title", [
    ("[v3 PATCH 0/2] mm: foo", 3, 0, 2, False, "mm: foo"),
    ("[PATCH net-next v3 0/4] net: bar", 3, 0, 4, False, "net: bar"),
    ("[RFC PATCH v2 00/10] Direct Map Removal", 2, 0, 10, True, "Direct Map Removal"),
    ("[net,v2,1/2] tcp: fix", 2, 1, 2, False, "tcp: fix"),
    ("[PATCH 3/2] extra fix", 1, 3, 2, False, "extra fix"),
    ("[PATCH] single", 1, None, None, False, "single"),
    ("[PATCH V5 07/12] KVM: x", 5, 7, 12, False, "KVM: x"),
    ("[RFC] [PATCH 1/3] two brackets", 1, 1, 3, True, "two brackets"),
    ("[PATCH RFC v4 2/3] rfc after", 4, 2, 3, True, "rfc after"),
])
def test_subject_prefixes_parse_to_version_and_position(raw, version, number, total, rfc, title):
    s = parse(raw)
    assert (s.version, s.number, s.total, s.rfc, s.title) == (version, number, total, rfc, title)


def test_reply_subjects_are_marked_and_stripped():
    s = parse("Re: [PATCH v3 4/6] KVM: guest_memfd: add support")
    assert s.is_reply and s.version == 3 and s.number == 4
    assert s.title == "KVM: guest_memfd: add support"


def test_folded_subject_whitespace_is_collapsed():
    assert parse("[PATCH v7 04/12] KVM: guest_memfd: Add stub for\n kvm_arch_gmem_invalidate").title == \
        "KVM: guest_memfd: Add stub for kvm_arch_gmem_invalidate"


def test_list_tags_are_kept_as_prefixes():
    assert "net-next" in parse("[PATCH net-next v3 0/4] x").prefixes


def test_numbers_past_an_integer_column_are_prefix_text_not_a_version_or_counter():
    from untangle import subject
    s = subject.parse("[PATCH v99999999999 1/100000000000] mm: x")
    assert s.version != 99999999999 and s.total != 100000000000
    assert s.title == "mm: x"
