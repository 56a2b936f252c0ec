"""docs/dataflow.svg matches the code: every module and worker task is drawn, and it is current."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _svg_text() -> str:
    return (REPO / "docs/dataflow.svg").read_text()


def test_every_untangle_and_services_module_is_in_the_picture():
    svg = _svg_text()
    modules = [p.stem for d in ("untangle", "reviewapp/services") for p in (REPO / d).glob("*.py")
               if p.stem != "__init__"]
    missing = [m for m in modules if not re.search(rf"\b{m}\b", svg)]
    assert modules and missing == []


def test_every_worker_task_is_in_the_picture():
    svg = _svg_text()
    tasks = [name for p in (REPO / "worker").glob("tasks*.py")
             for name in re.findall(r"@(?:app\.task|shared_task)[^\n]*\n(?:@[^\n]*\n)*def (\w+)", p.read_text())]
    assert len(tasks) >= 10 and [t for t in tasks if t not in svg] == []


def test_the_committed_picture_is_what_the_script_draws():
    done = subprocess.run([sys.executable, "docs/dataflow.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_the_deploy_picture_is_what_its_script_draws_from_the_queue_roles():
    done = subprocess.run([sys.executable, "docs/deploy_picture.py", "--check"], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    svg = (REPO / "docs/deploy.svg").read_text()
    from reviewapp.tasknames import ROLES
    assert all(f"-Q {role}" in svg for role in ROLES)
