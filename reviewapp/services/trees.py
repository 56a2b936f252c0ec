"""Git trees we apply onto: a Tree row plus a bare mirror under DATA_DIR/mirrors.

The mirror is the only copy we work in; chains are written into it as refs
(refs/reviewapp/chains/<run id>) and it is served read-only over HTTP.
"""
import contextlib
import fcntl
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
    """Create or refresh this host's mirror; records state/error/fetched on the row, which
    every other host's mirror then follows (ensure_mirror)."""
    if not claimed and not claim_fetch(tree_id):
        raise TreeError(f"tree {tree_id} is being fetched by another process")
    tree = Tree.objects.get(id=tree_id)
    try:
        with _host_lock(tree):
            path = _mirror_add(tree)
    except Exception as exc:  # git's own message is what the user needs
        msg = _git_message(exc)
        Tree.objects.filter(id=tree.id).update(state=ERROR, error=msg)
        raise TreeError(f"fetching {tree.name} from {tree.source} failed: {msg}") from exc
    now = timezone.now()
    Tree.objects.filter(id=tree.id).update(state=READY, error="", mirror_path=str(path), fetched=now)
    _mark_fetched(path, now)
    tree.refresh_from_db()
    return tree


def _mirror_add(tree: Tree) -> Path:
    return gitrepo_mirror.mirror_add(Path(settings.DATA_DIR), tree.name, tree.source, tree.branches or None,
                                     references=settings.GIT_REFERENCES)


# Each host keeps its own mirror (a cache). The row's `fetched` says when some host last
# fetched the tree; a mirror records which of those fetches it has caught up with.
FETCHED_MARK = "reviewapp-fetched"


def _mark_fetched(path: Path, when) -> None:
    (path / FETCHED_MARK).write_text(when.isoformat())


def _behind(tree: Tree, path: Path) -> bool:
    if tree.fetched is None:
        return False
    try:
        return (path / FETCHED_MARK).read_text().strip() < tree.fetched.isoformat()
    except OSError:
        return True


@contextlib.contextmanager
def _host_lock(tree: Tree):
    """One process of this host at a time makes or fetches a mirror (git races on refs)."""
    mirrors_dir().mkdir(parents=True, exist_ok=True)
    with open(mirrors_dir() / f".{tree.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


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
    """This host's mirror, made (or caught up with the last fetch any host recorded) first
    when needed. A tree no host has fetched yet is fetched as by `tree fetch`."""
    path = mirror_of(tree)
    if path.is_dir() and not _behind(tree, path):
        return path
    if tree.fetched is None:
        if tree.state == FETCHING:
            raise TreeError(f"tree {tree.name} is being fetched; try again shortly")
        fetch_tree(tree.id)
        return path
    try:
        with _host_lock(tree):
            if not path.is_dir() or _behind(tree, path):
                _mirror_add(tree)
                _mark_fetched(path, tree.fetched)
    except Exception as exc:  # noqa: BLE001 - git's message
        raise TreeError(f"making this host's mirror of {tree.name} from {tree.source} failed: "
                        f"{_git_message(exc)}") from exc
    return path


def catch_up(tree: Tree) -> Path:
    """Fetch this host's mirror now (a base it lacks may be newer than the last fetch any
    host recorded); the row is left alone."""
    path = mirror_of(tree)
    with _host_lock(tree):
        _mirror_add(tree)
        if tree.fetched:
            _mark_fetched(path, tree.fetched)
    return path


def tree_dict(tree: Tree) -> dict:
    path = mirror_of(tree)
    default = gitrepo_repo.default_branch(path) if path.is_dir() else None
    return {"name": tree.name, "source": tree.source, "branches": list(tree.branches),
            "state": tree.state, "error": tree.error or None, "mirror": str(path),
            "default_branch": default,
            "head": gitrepo_repo.resolve(path, default) if default else None,
            "fetched": tree.fetched.isoformat() if tree.fetched else None}
