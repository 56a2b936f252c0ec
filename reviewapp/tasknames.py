"""The worker's task names and the queue each goes to, by what it needs of its host.

Plain data (no Celery): settings build the routes from it, taskqueue sends by these names.
A worker host serves the roles it is fit for (`celery -A worker worker -Q ingest,apply`):

    ingest  mail in, graphs and review state: the database and the archives (and a tree
            mirror for merged detection and MAINTAINERS, made on demand)
    apply   chains applied, trees fetched, in-flight conflicts: tree mirrors
    kernel  suites: many cores, KVM where there is one, the kernel build cache
    mail    digests: the SMTP server
"""
FETCH_THREAD = "worker.tasks.fetch_thread"
FETCH_TREE = "worker.tasks_apply.fetch_tree"
APPLY_RUN = "worker.tasks_apply.apply_run"
RECOMPUTE_GRAPHS = "worker.tasks_graph.recompute_graphs"
FETCH_GRAPH = "worker.tasks_graph.fetch_graph"
COMPUTE_MISSING_GRAPHS = "worker.tasks.compute_missing_graphs"
RECOMPUTE_REVIEWS = "worker.tasks.recompute_reviews"
COMPUTE_MISSING_REVIEWS = "worker.tasks.compute_missing_reviews"
RUN_SUITE = "worker.tasks.run_suite"
SEND_DUE_DIGESTS = "worker.tasks.send_due_digests"
SYNC_LISTS = "worker.tasks_sync.sync_lists"
SYNC_LIST = "worker.tasks_sync.sync_list"
REAP_LEASES = "worker.tasks.reap_leases"
COMPUTE_INFLIGHT = "worker.tasks.compute_inflight"

ALL = (FETCH_THREAD, FETCH_TREE, APPLY_RUN, RECOMPUTE_GRAPHS, FETCH_GRAPH, COMPUTE_MISSING_GRAPHS,
       RECOMPUTE_REVIEWS, COMPUTE_MISSING_REVIEWS, RUN_SUITE, SEND_DUE_DIGESTS, SYNC_LISTS, SYNC_LIST,
       REAP_LEASES, COMPUTE_INFLIGHT)


ROLES = {
    "ingest": (FETCH_THREAD, RECOMPUTE_GRAPHS, FETCH_GRAPH, COMPUTE_MISSING_GRAPHS, RECOMPUTE_REVIEWS,
               COMPUTE_MISSING_REVIEWS, SYNC_LISTS, SYNC_LIST, REAP_LEASES),
    "apply": (FETCH_TREE, APPLY_RUN, COMPUTE_INFLIGHT),
    "kernel": (RUN_SUITE,),
    "mail": (SEND_DUE_DIGESTS,),
}


def queues(prefix: str = "") -> list[str]:
    """Every role's queue name (a prefix keeps deployments or test runs on one broker apart)."""
    return [prefix + role for role in ROLES]


def routes(prefix: str = "") -> dict[str, dict[str, str]]:
    return {name: {"queue": prefix + role} for role, names in ROLES.items() for name in names}
