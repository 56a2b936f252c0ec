"""The demo story (fixtures/demo) for tests: its mails, its tree built once, its msgids.

Django is imported only inside the functions, so pure tests may import the constants.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_MAIL = REPO / "fixtures" / "demo" / "mail"

MAPPING_V7 = "20250318142233.2716254-1-tabba@google.com"
MAPPING_V8 = "20250418120905.3320715-1-tabba@google.com"
UFFD_V2 = "20250402151209.51274-1-kalyazin@amazon.com"
UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"
FASTPATH = "20250410063119.40211-1-lena.brandt@example.org"
RESTRICTED = "20250319101548.2791123-1-tabba@google.com"
DOCS = "20250422084530.88342-1-ravi.menon@example.org"


def ingest_demo_mails() -> None:
    """Every demo thread ingested, in file order (no tree, no runs)."""
    from reviewapp.services.ingest import ingest
    from untangle.mbox import messages_from_path
    files = sorted(DEMO_MAIL.glob("*.mbox"))
    assert files, f"the demo mails ({DEMO_MAIL}) are missing"
    for path in files:
        ingest(messages_from_path(path))


def build_demo_source(dest: Path) -> Path:
    """The published demo tree (fixed shas) built at dest/linux."""
    from fixtures.demo.build import build_tree
    path = dest / "linux"
    build_tree(path)
    return path


def compute_demo_graphs() -> None:
    """What the worker does after the mail is stored: a graph for every revision."""
    from reviewapp.models import Revision
    from reviewapp.services.graph import compute_missing
    compute_missing(Revision.objects.values_list("id", flat=True))


def ingest_demo_mails_and_graphs() -> None:
    ingest_demo_mails()
    compute_demo_graphs()
