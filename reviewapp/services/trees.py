"""Git trees we apply onto: a Tree row plus a bare mirror under DATA_DIR/mirrors.

The mirror is the only copy we work in; chains are written into it as refs
(refs/reviewapp/chains/<run id>) and it is served read-only over HTTP.
"""
import logging
import re
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from untangle import gitrepo_mirror, gitrepo_repo

from ..models import Tree

log = logging.getLogger("reviewapp.trees")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NEW, FETCHING, READY, ERROR = Tree.State.NEW, Tree.State.FETCHING, Tree.State.READY, Tree.State.ERROR


class TreeError(Exception):
    pass


def mirrors_dir() -> Path:
    return Path(settings.DATA_DIR) / "mirrors"


def mirror_of(tree: Tree) -> Path:
    """Where the tree's bare mirror lives (derived from the name, so a moved
    DATA_DIR still finds it)."""
    return mirrors_dir() / f"{tree.name}.git"


def _normalise_source(source: str) -> str:
    # A local path or bundle is stored absolute: the worker runs elsewhere.
    p = Path(source).expanduser()
    return str(p.resolve()) if p.exists() else source


def get_tree(name: str) -> Tree:
    try:
        return Tree.objects.get(name=name)
    except Tree.DoesNotExist:
        known = ", ".join(Tree.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise TreeError(f"no tree named {name!r} (known: {known}); add it with `manage.py tree add`") from None


def register_tree(name: str, source: str, branches: list[str] | None = None) -> Tree:
    """Create or update the Tree row without touching git."""
    if not NAME_RE.match(name or ""):
        raise TreeError(f"invalid tree name {name!r}: letters, digits, '.', '_' and '-' only")
    if not source:
        raise TreeError("a tree needs a source: URL, local repository path or bundle file")
    tree, _ = Tree.objects.update_or_create(
        name=name, defaults={"source": _normalise_source(source), "branches": list(branches or [])})
    return tree


def add_tree(name: str, source: str, branches: list[str] | None = None, fetch: bool = True) -> Tree:
    """Register a tree and (by default) build its mirror in-process.

    source: a URL, a local repository path or a git bundle file; branches:
    which branches to mirror (all refs when empty). Returns the Tree, state
    "ready" once fetched. Raises TreeError when git cannot read the source.
    """
    tree = register_tree(name, source, branches)
    return fetch_tree(tree.id) if fetch else tree


def claim_fetch(tree_id: int) -> bool:
    """Only one fetch of a mirror at a time: git would race on its refs."""
    return Tree.objects.filter(id=tree_id).exclude(state=FETCHING).update(state=FETCHING) == 1


def fetch_tree(tree_id: int, claimed: bool = False) -> Tree:
    """Create or refresh the mirror; records state/error/fetched on the row."""
    if not claimed and not claim_fetch(tree_id):
        raise TreeError(f"tree {tree_id} is being fetched by another process")
    tree = Tree.objects.get(id=tree_id)
    try:
        path = gitrepo_mirror.mirror_add(Path(settings.DATA_DIR), tree.name, tree.source, tree.branches or None)
    except Exception as exc:  # git's own message is what the user needs
        msg = _git_message(exc)
        Tree.objects.filter(id=tree.id).update(state=ERROR, error=msg)
        raise TreeError(f"fetching {tree.name} from {tree.source} failed: {msg}") from exc
    Tree.objects.filter(id=tree.id).update(state=READY, error="", mirror_path=str(path),
                                           fetched=timezone.now())
    tree.refresh_from_db()
    return tree


def _git_message(exc: Exception) -> str:
    stderr = getattr(exc, "stderr", None)
    text = stderr if isinstance(stderr, str) and stderr.strip() else str(exc)
    return text.strip().replace("stderr: ", "")[:2000]


def request_fetch(tree: Tree) -> bool:
    """Queue a fetch on the worker (after commit). False if one is running."""
    if not claim_fetch(tree.id):
        return False
    from .. import dispatch
    dispatch.fetch_tree(tree.id)
    return True


def ensure_mirror(tree: Tree) -> Path:
    """The mirror path, building it in-process first if it was never fetched."""
    path = mirror_of(tree)
    if not path.is_dir():
        if tree.state == FETCHING:
            raise TreeError(f"tree {tree.name} is being fetched; try again shortly")
        fetch_tree(tree.id)
    return path


def tree_dict(tree: Tree) -> dict:
    path = mirror_of(tree)
    default = gitrepo_repo.default_branch(path) if path.is_dir() else None
    return {"name": tree.name, "source": tree.source, "branches": list(tree.branches),
            "state": tree.state, "error": tree.error or None, "mirror": str(path),
            "default_branch": default,
            "head": gitrepo_repo.resolve(path, default) if default else None,
            "fetched": tree.fetched.isoformat() if tree.fetched else None}
