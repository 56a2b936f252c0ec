"""Am-ready mboxes: the chain's through real `git am` gives the apply run's tree;
a revision's carries reviewers' trailers from replies."""
import email
import mailbox
import subprocess
from pathlib import Path

import pytest

from fixtures.demo.build import git_env
from reviewapp.models import ApplyRun, Message, Patch, Revision, Trailer
from reviewapp.services import apply as apply_service
from tests.support.demo import FASTPATH, MAPPING_V7, UFFD_V3

pytestmark = pytest.mark.django_db


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, env=git_env(repo))
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def test_chain_mbox_through_git_am_on_the_base_gives_the_apply_runs_tree(anonymous, demo, demo_source, tmp_path):
    run = apply_service.apply(Revision.objects.get(msgid=FASTPATH), demo)
    assert run.status == ApplyRun.APPLIED and run.chain == [MAPPING_V7, UFFD_V3, FASTPATH]
    response = anonymous.get(f"/api/chains/{run.id}/mbox")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/mbox")
    work = tmp_path / "am"
    git(tmp_path, "clone", "-q", str(demo_source), str(work))
    git(work, "checkout", "-q", "--detach", run.base)
    git(work, "am", "-q", stdin=response.content)
    assert git(work, "rev-parse", "HEAD^{tree}").strip() == run.tree_sha
    subjects = git(work, "log", "--format=%s", f"{run.base}..HEAD").splitlines()[::-1]
    patches = [p for m in run.chain for p in Patch.objects.filter(revision__msgid=m).order_by("number")]
    assert len(subjects) == len(patches) == run.total
    covers = Message.objects.filter(kind=Message.COVER, revision__msgid__in=run.chain)
    assert covers.exists() and not any(c.msgid.encode() in response.content for c in covers)


def test_chain_mbox_of_an_unknown_or_chainless_run_is_404(anonymous, demo):
    assert anonymous.get("/api/chains/999999/mbox").status_code == 404
    run = ApplyRun.objects.create(tree=demo, root=Revision.objects.get(msgid=FASTPATH))
    response = anonymous.get(f"/api/chains/{run.id}/mbox")
    assert response.status_code == 404 and "no chain yet" in response.json()["detail"]


def _review_trailer() -> Trailer:
    """A reviewer's trailer given in a reply (not in the patch's own mail)."""
    own = Patch.objects.values_list("message_id", flat=True)
    found = (Trailer.objects.filter(kind__in=["Reviewed-by", "Acked-by", "Tested-by"], revision__isnull=False)
             .exclude(message_id__in=own).select_related("revision", "patch").first())
    assert found is not None, "the demo has review replies"
    return found


def test_revision_mbox_folds_reviewers_trailers_into_each_commit_message(anonymous, demo, tmp_path):
    trailer = _review_trailer()
    rev = trailer.revision
    response = anonymous.get(f"/api/revisions/{rev.msgid}/mbox")
    assert response.status_code == 200
    box = [email.message_from_bytes(m.as_bytes()) for m in mailbox.mbox(_write(tmp_path / "rev.mbox", response.content))]
    patches = list(Patch.objects.filter(revision=rev).order_by("number"))
    assert [m["Message-ID"].strip("<>") for m in box] == [p.message.msgid for p in patches]
    line = f"{trailer.kind}: {trailer.value}"
    for mail, patch in zip(box, patches):
        message = mail.get_payload(decode=True).decode().split("\n---\n", 1)[0]
        wanted = trailer.patch_id is None or trailer.patch_id == patch.id
        assert (line in message) == wanted, (patch.number, message[-300:])
        assert message.count(line) <= 1


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)
