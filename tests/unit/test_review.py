"""untangle.review: follow-up trailers as b4 am reads them, their walk up the thread,
and carrying them to the next revision."""
from datetime import datetime, timedelta, timezone

from untangle import review as rv

T0 = datetime(2025, 4, 4, 12, 0, tzinfo=timezone.utc)


def mail(msgid, kind="reply", irt=None, frm=("Rev Iewer", "rev@example.org"), body="", minutes=0):
    return rv.ThreadMail(msgid=msgid, in_reply_to=irt, references=(irt,) if irt else (), kind=kind,
                         from_name=frm[0], from_email=frm[1], date=T0 + timedelta(minutes=minutes), body=body)


def kinds(found):
    return [(t.kind, t.email) for t in found]


def test_quoted_trailers_and_the_signature_do_not_count():
    body = ("> Reviewed-by: Quoted Person <q@example.org>\n\nLooks good.\n\n"
            "Reviewed-by: Rev Iewer <rev@example.org>\n-- \nAcked-by: Sig Nature <s@example.org>\n")
    assert kinds(rv.followup_trailers(body)) == [("Reviewed-by", "rev@example.org")]


def test_indented_and_lowercase_trailers_count_as_b4_reads_them():
    found = rv.followup_trailers("Nice.\n\n  reviewed-by: Rev Iewer <REV@example.org>\n")
    assert kinds(found) == [("Reviewed-by", "rev@example.org")]


def test_a_person_trailer_without_an_address_and_a_link_in_a_person_trailer_are_ignored():
    body = "Reviewed-by: Rev Iewer\nTested-by: https://ci.example.org/run/1\nLink: https://lore.kernel.org/r/x\n"
    assert kinds(rv.followup_trailers(body)) == [("Link", "")]


def test_a_wrapped_trailer_address_is_joined():
    assert kinds(rv.followup_trailers("Acked-by: A Very Long Name\n<long@example.org>\n")) == [
        ("Acked-by", "long@example.org")]


def test_a_trailer_for_someone_else_counts_only_when_the_sender_gives_it():
    other = rv.followup_trailers("Reviewed-by: Someone Else <else@example.org>\n")[0]
    assert not rv.from_sender(other, "Rev Iewer", "rev@example.org")
    assert rv.from_sender(other, "Someone Else", "else@corp.example.org")  # same name, other address


def test_a_reply_to_the_cover_gives_the_cover_and_a_reply_to_a_patch_that_patch():
    thread = [mail("c", "cover", frm=("Au Thor", "au@example.org")),
              mail("p1", "patch", "c", ("Au Thor", "au@example.org")),
              mail("r1", irt="c", body="Acked-by: Rev Iewer <rev@example.org>\n", minutes=5),
              mail("r2", irt="p1", body="Tested-by: Rev Iewer <rev@example.org>\n", minutes=6)]
    given = rv.attribute(thread)
    assert kinds(given["c"]) == [("Acked-by", "rev@example.org")]
    assert kinds(given["p1"]) == [("Tested-by", "rev@example.org")]
    assert given["p1"][0].from_msgid == "r2"


def test_a_trailer_deep_in_the_thread_walks_up_to_its_patch_taking_the_replies_it_passes():
    thread = [mail("p1", "patch", frm=("Au Thor", "au@example.org")),
              mail("r1", irt="p1", frm=("Other", "o@example.org"), body="Tested-by: Other <o@example.org>\n"),
              mail("r2", irt="r1", body="Thanks.\n\nReviewed-by: Rev Iewer <rev@example.org>\n", minutes=1)]
    given = rv.attribute(thread)
    # b4 counts r1's trailer for itself and again on r2's walk; dedup leaves one of each.
    assert sorted(kinds(rv.dedup(given["p1"]))) == [("Reviewed-by", "rev@example.org"), ("Tested-by", "o@example.org")]


def test_a_reply_whose_parent_is_not_stored_gives_nothing():
    assert rv.attribute([mail("r", irt="absent", body="Reviewed-by: R <rev@example.org>\n")]) == {}


def side(msgid, number, title, pid, trailers=()):
    return rv.PatchSide(msgid, number, title, pid, list(trailers))


ACK = rv.Given(kind="Acked-by", name="Rev", email="rev@example.org", value="", from_msgid="r1")


def test_an_unchanged_patch_carries_its_trailers_even_when_it_moved():
    old = [side("a1", 1, "mm: one", "pid-1", [ACK]), side("a2", 2, "mm: two", "pid-2")]
    new = [side("b1", 1, "mm: zero", "pid-0"), side("b2", 2, "mm: one", "pid-1")]
    out = rv.carried(old, 3, [], new)
    assert [(t.carried_from, t.stale) for t in out["b2"]] == [(3, False)]
    assert "b1" not in out or out["b1"] == []


def test_a_changed_patch_keeps_its_trailers_only_as_stale_and_the_cover_trailers_follow():
    cover_ack = rv.Given(kind="Reviewed-by", name="C", email="c@example.org", value="", from_msgid="rc", via="cover")
    old = [side("a1", 1, "mm: one", "pid-1", [ACK])]
    new = [side("b1", 1, "mm: one.", "pid-1-changed")]
    out = rv.carried(old, 1, [cover_ack], new)
    assert [(t.kind, t.carried_from, t.stale, t.via) for t in out["b1"]] == [
        ("Acked-by", 1, True, "reply"), ("Reviewed-by", 1, True, "cover")]


def test_a_trailer_carried_twice_names_the_version_it_was_given_on():
    twice = rv.Given(kind="Acked-by", name="Rev", email="rev@example.org", value="", from_msgid="r1", carried_from=1)
    out = rv.carried([side("a1", 1, "x", "p", [twice])], 2, [], [side("b1", 1, "x", "p")])
    assert out["b1"][0].carried_from == 1 and not out["b1"][0].stale


def test_an_address_one_domain_level_apart_or_with_an_extension_is_the_sender_as_b4_says():
    assert rv.same_address("misono.tomohiro@jp.fujitsu.com", "misono.tomohiro@fujitsu.com")
    assert rv.same_address("foo+kernel@example.org", "FOO@example.org")
    assert not rv.same_address("foo@a.b.example.org", "foo@example.org")
    assert not rv.same_address("bar@example.org", "foo@example.org")


def test_a_path_filter_matches_files_and_every_directory_above_them_as_git_pathspecs_do():
    keys = rv.path_keys(["mm/userfaultfd.c", "/mm/memory.c", "include/linux/mm.h", "mm"], limit=100)
    # Directories first, shallow before deep; a file named like a directory is kept once.
    assert keys == ["include", "mm", "include/linux", "include/linux/mm.h", "mm/memory.c", "mm/userfaultfd.c"]
    assert rv.path_filter_key("/mm/") == rv.path_filter_key("mm") == rv.path_filter_key("./mm//") == "mm"
    assert rv.path_filter_key("mm/user") not in keys  # a part of a name is not a path
    assert rv.path_filter_key("/") == ""


def test_path_keys_are_bounded_and_keep_directories_before_files():
    paths = [f"drivers/gpu/drm/d{i}/f{j}.c" for i in range(50) for j in range(20)]
    keys = rv.path_keys(paths, limit=60)
    assert len(keys) == 60
    assert keys[:3] == ["drivers", "drivers/gpu", "drivers/gpu/drm"]
    assert all(not k.endswith(".c") for k in keys[:53]) and keys[53].endswith(".c")
