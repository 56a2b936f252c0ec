"""The uffd-kernel run page: live build progress, the kernel's downloads, the CLI name."""
import shutil

import pytest
from django.urls import reverse

from reviewapp.models import ApplyRun, Revision, SuiteRun
from reviewapp.services import apply, results, suites

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"


@pytest.fixture
def kernel_run(demo):
    applied = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert applied.status == ApplyRun.APPLIED, applied.error
    return SuiteRun.objects.create(apply_run=applied, suite=suites.builtin("uffd-kernel"),
                                   status=SuiteRun.RUNNING, step="kernel: compile 42%")


@pytest.mark.django_db
def test_running_kernel_build_shows_its_step_and_compile_percentage(client, kernel_run):
    page = client.get(reverse("suite-run", kwargs={"run_id": kernel_run.id})).content.decode()
    assert "kernel: compile 42%" in page and 'http-equiv="refresh"' in page
    assert client.get(reverse("suite-run-json", kwargs={"run_id": kernel_run.id})).json()["step"] == \
        "kernel: compile 42%"


@pytest.mark.django_db
def test_built_kernel_and_config_are_offered_for_download_only_when_kept(client, kernel_run, settings):
    url = reverse("suite-run-artifact", kwargs={"run_id": kernel_run.id, "name": "bzImage"})
    assert client.get(url).status_code == 404
    page = client.get(reverse("suite-run", kwargs={"run_id": kernel_run.id})).content.decode()
    assert 'id="suite-artifacts"' not in page
    kept = suites.artifacts_dir(kernel_run)
    kept.mkdir(parents=True)
    (kept / "bzImage").write_bytes(b"\x4d\x5a" + b"\0" * 100)
    (kept / "config").write_text("CONFIG_USERFAULTFD=y\n")
    settings.RESULT_MAX_BYTES = 1024
    (kept / "bzImage.big").write_bytes(b"x" * 2048)
    assert results.store_artifacts(kernel_run, kept, ("bzImage", "config", "bzImage.big")) == [
        "artifact bzImage.big: 2048 bytes, over the limit of 1024; not kept"]
    shutil.rmtree(kept)  # the worker's disk is gone: the web host serves them from the database
    assert results.artifact_names(kernel_run) == ["bzImage", "config"]
    page = client.get(reverse("suite-run", kwargs={"run_id": kernel_run.id})).content.decode()
    assert url in page and ".config" in page
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content)[:2] == b"MZ"
    config = client.get(reverse("suite-run-artifact", kwargs={"run_id": kernel_run.id, "name": "config"}))
    assert b"CONFIG_USERFAULTFD=y" in b"".join(config.streaming_content)
    assert client.get(reverse("suite-run-artifact", kwargs={"run_id": kernel_run.id,
                                                           "name": "..secret"})).status_code == 404


@pytest.mark.django_db
def test_uffd_kernel_is_a_builtin_suite_exporting_the_whole_tree():
    suite = suites.builtin("uffd-kernel")
    assert suite.name == "uffd-kernel" and suites.builds_kernel(suites.definition_of(suite))
    assert suites.export_paths(suites.definition_of(suite)) is None
    assert suites.builtin("uffd-faults").name == "uffd-faults" and suites.builtin("nope") is None
    kvm = suites.definition_of(suites.builtin("uffd-kvm-kernel"))
    assert suites.builds_kernel(kvm) and kvm["kernel"]["kvm"] is True
