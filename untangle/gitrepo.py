"""The git layer's front door: mirrors, revisions, applying patch chains, blame, trees.

Only the git layer talks to git (checked by import-linter). It is split into rooms:

  gitrepo_repo    opening a repository, running git, naming commits (resolve, commit_info)
  gitrepo_mirror  bare mirrors of kernel trees (mirror_add, mirror_fetch)
  gitrepo_base    base choice for a series (guess_base -> BaseChoice)
  gitrepo_apply   applying a chain, one commit per patch (apply_chain -> ApplyResult)
  gitrepo_blame   which commit wrote each line (blame)
  gitrepo_merge   three-way merges of applied chains in memory (merge_check, merge_base)
  gitrepo_read    trees, files, diffs, range-diffs, history, worktrees, exports
  gitrepo_patch   parsing and applying unified diffs (no git objects)

Hot paths (apply_chain, blame, guess_base, tree reads) run in-process with pygit2
and never touch an index or a checkout; porcelain-shaped operations (clone/fetch,
range-diff, worktrees) run the git binary through GitPython with an explicit
working directory. Callers may import a room directly or use the names below.
"""
from untangle.gitrepo_repo import (  # noqa: F401
    CHAIN_REF_PREFIX, COMMITTER_EMAIL, COMMITTER_NAME, LINK_PREFIX, MODE_BLOB, MODE_TREE, commit_info, default_branch, resolve)
from untangle.gitrepo_mirror import (  # noqa: F401
    BundleError, export_bundle, import_bundle, mirror_add, mirror_fetch)
from untangle.gitrepo_base import (  # noqa: F401
    guess_base)
from untangle.gitrepo_apply import (  # noqa: F401
    apply_chain, commit_message, object_io_floor, pin)
from untangle.gitrepo_blame import (  # noqa: F401
    blame)
from untangle.gitrepo_merge import (  # noqa: F401
    MergeCheck, MergeError, Stack, changed_paths, merge_base, merge_check, stack_chains)
from untangle.gitrepo_read import (  # noqa: F401
    blob_id, changed_files, diff, directories, export_tree, list_tree, patch_ids_since, range_diff, read_file,
    worktree)
