"""What was posted (lists, messages, series, revisions, patches, trailers) and
what we did with it (fetches, dependencies, trees, applies, suite runs, digests)."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.db.models.functions import Substr

from untangle import address, grouping


class MailingList(models.Model):
    name = models.CharField(max_length=200, unique=True)
    url = models.CharField(max_length=500, blank=True, default="")  # public-inbox URL when followed

    def __str__(self):
        return self.name


class Message(models.Model):
    COVER, PATCH, REPLY, OTHER = "cover", "patch", "reply", "other"
    msgid = models.CharField(max_length=500, unique=True)
    mailing_list = models.ForeignKey(MailingList, null=True, blank=True, on_delete=models.SET_NULL)
    lists = models.JSONField(default=list)  # every list it went to (List-Id, To, Cc)
    subject = models.TextField()
    from_name = models.CharField(max_length=300, blank=True)
    from_email = models.CharField(max_length=300, blank=True, db_index=True)
    date = models.DateTimeField(null=True, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=500, null=True, blank=True, db_index=True)
    references = models.JSONField(default=list)
    kind = models.CharField(max_length=10)
    version = models.PositiveIntegerField(default=1)
    number = models.PositiveIntegerField(null=True, blank=True)
    total = models.PositiveIntegerField(null=True, blank=True)
    title = models.TextField(blank=True)
    body = models.TextField()
    tags = models.JSONField(default=dict)
    revision = models.ForeignKey("Revision", null=True, blank=True, related_name="messages",
                                 on_delete=models.SET_NULL)
    received = models.DateTimeField(auto_now_add=True)

    def summary(self) -> dict:
        """The light form the grouping code works on."""
        return {"msgid": self.msgid, "kind": self.kind, "version": self.version,
                "number": self.number, "total": self.total, "in_reply_to": self.in_reply_to,
                "references": self.references, "from_email": self.from_email,
                "title": self.title, "date": self.date.isoformat() if self.date else ""}

    def __str__(self):
        return self.msgid


class Series(models.Model):
    """A family of revisions of one piece of work."""
    title = models.TextField()
    author_email = models.CharField(max_length=300, db_index=True)
    change_id = models.CharField(max_length=200, null=True, blank=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.title


class RevisionQuerySet(models.QuerySet):
    def live(self):
        """Without the revisions ingest set aside as "stale:" (regrouped into another one)."""
        return self.exclude(msgid__startswith=Revision.STALE_PREFIX)


class Revision(models.Model):
    STALE_PREFIX = "stale:"  # msgid prefix of a revision whose mails were regrouped elsewhere
    objects = RevisionQuerySet.as_manager()
    series = models.ForeignKey(Series, related_name="revisions", on_delete=models.PROTECT)
    msgid = models.CharField(max_length=500, unique=True)  # cover's, else first patch's
    anchor = models.CharField(max_length=500, unique=True)  # the mail the posting hangs from
    version = models.PositiveIntegerField(default=1)
    rfc = models.BooleanField(default=False)
    title = models.TextField()
    title_key = models.CharField(max_length=255, db_index=True, default="")  # normalised, for families
    cover = models.OneToOneField(Message, null=True, blank=True, related_name="cover_of",
                                 on_delete=models.SET_NULL)
    author_name = models.CharField(max_length=300, blank=True)
    author_email = models.CharField(max_length=300, blank=True)
    mailing_list = models.ForeignKey(MailingList, null=True, blank=True, on_delete=models.SET_NULL)
    date = models.DateTimeField(null=True, blank=True, db_index=True)
    expected = models.PositiveIntegerField(default=1)
    received = models.PositiveIntegerField(default=0)
    complete = models.BooleanField(default=False)
    missing = models.JSONField(default=list)
    base_commit = models.CharField(max_length=64, null=True, blank=True)
    change_id = models.CharField(max_length=200, null=True, blank=True, db_index=True)
    prerequisites = models.JSONField(default=list)  # [{"kind": "patch-id", "value": ...}]
    previous = models.ForeignKey("self", null=True, blank=True, related_name="next_revisions",
                                 on_delete=models.SET_NULL)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date"]
        indexes = [  # the series list: newest first, without "stale:" revisions (issue 11.2)
            models.Index(models.F("date").desc(), models.F("id").desc(), name="revision_list_order",
                         condition=~models.Q(msgid__startswith="stale:")),
        ]

    @property
    def author(self) -> str:
        return address.display(self.author_name, self.author_email)

    @property
    def partial_root(self) -> str | None:
        """The cover (thread root) of a posting only part of which reached this list, or None."""
        return grouping.partial_root(self.anchor)

    def __str__(self):
        return f"{self.title} v{self.version}"


class Patch(models.Model):
    # Null only between storing a mail and grouping it into its revision.
    revision = models.ForeignKey(Revision, null=True, related_name="patches", on_delete=models.CASCADE)
    message = models.OneToOneField(Message, related_name="patch", on_delete=models.CASCADE)
    number = models.PositiveIntegerField()
    subject = models.TextField()
    author_name = models.CharField(max_length=300, blank=True)
    author_email = models.CharField(max_length=300, blank=True)
    date = models.DateTimeField(null=True, blank=True)
    commit_message = models.TextField(blank=True)
    diff = models.TextField()
    patch_id = models.CharField(max_length=40, null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["number", "id"]

    @property
    def msgid(self) -> str:
        return self.message.msgid

    def __str__(self):
        return f"[{self.number}] {self.subject}"


class PatchFile(models.Model):
    patch = models.ForeignKey(Patch, related_name="files", on_delete=models.CASCADE)
    path = models.TextField()
    old_path = models.TextField(null=True, blank=True)
    old_blob = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    new_blob = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    status = models.CharField(max_length=10, default="modified")

    class Meta:
        # Graphs look up the producers of many pre-images at once by their first 7 hex
        # digits (the shortest id a diff's index line has): one IN over this expression.
        indexes = [models.Index(Substr("new_blob", 1, 7), name="patchfile_new_blob7")]


class Trailer(models.Model):
    kind = models.CharField(max_length=60, db_index=True)
    name = models.CharField(max_length=300, blank=True)
    email = models.CharField(max_length=300, blank=True)
    value = models.TextField()
    message = models.ForeignKey(Message, related_name="trailers", on_delete=models.CASCADE)
    patch = models.ForeignKey(Patch, null=True, blank=True, related_name="trailers",
                              on_delete=models.CASCADE)
    revision = models.ForeignKey(Revision, null=True, blank=True, related_name="trailers",
                                 on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "kind", "value"],
                                               name="trailer_once_per_mail")]


class FetchRequest(models.Model):
    class State(models.TextChoices):
        QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    QUEUED, RUNNING, DONE, FAILED = State.QUEUED, State.RUNNING, State.DONE, State.FAILED
    ref = models.TextField()
    msgid = models.CharField(max_length=500, db_index=True)
    state = models.CharField(max_length=10, choices=State.choices, default=QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    revisions = models.JSONField(default=list)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Claimed work carries a lease (reviewapp.services.leases): the worker running it
    # pushes lease_until forward; past it, the reaper re-queues the row once, then fails it.
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    requeues = models.PositiveSmallIntegerField(default=0)


class Dependency(models.Model):
    DEPENDS_ON, PREVIOUS, SUPERSEDES, RELATED, BASE = (
        "depends-on", "previous-revision", "supersedes", "related", "base")
    source = models.ForeignKey(Revision, related_name="dependencies", on_delete=models.CASCADE)
    kind = models.CharField(max_length=20)
    target = models.CharField(max_length=500, db_index=True)  # msgid, change-id, patch-id or sha
    target_type = models.CharField(max_length=20, default="msgid")
    target_revision = models.ForeignKey(Revision, null=True, blank=True, related_name="dependents",
                                        on_delete=models.SET_NULL)
    how = models.CharField(max_length=10)  # tag, prose, blob, reply
    evidence = models.TextField()
    evidence_msgid = models.CharField(max_length=500)
    version = models.PositiveIntegerField(null=True, blank=True)
    extra = models.JSONField(default=dict)
    error = models.TextField(blank=True)  # why the target could not be resolved

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["source", "kind", "target", "how", "evidence_msgid"], name="dependency_once")]


class GraphSnapshot(models.Model):
    root = models.ForeignKey(Revision, related_name="graphs", on_delete=models.CASCADE)
    data = models.JSONField()
    changes = models.JSONField(default=list)
    computed = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-computed"]


class Tree(models.Model):
    class State(models.TextChoices):
        NEW, FETCHING, READY, ERROR = "new", "fetching", "ready", "error"
    name = models.CharField(max_length=100, unique=True)
    source = models.TextField()
    branches = models.JSONField(default=list)
    mirror_path = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    error = models.TextField(blank=True)
    fetched = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.name


class ApplyRun(models.Model):
    class Status(models.TextChoices):
        QUEUED, RUNNING, APPLIED, CONFLICT, FAILED = "queued", "running", "applied", "conflict", "failed"
    QUEUED, RUNNING, APPLIED, CONFLICT, FAILED = (Status.QUEUED, Status.RUNNING, Status.APPLIED,
                                                  Status.CONFLICT, Status.FAILED)
    tree = models.ForeignKey(Tree, related_name="runs", on_delete=models.CASCADE)
    # A chain is rooted at a revision; a list's integration branch (services.inflight)
    # stacks many chains and has no root.
    root = models.ForeignKey(Revision, related_name="apply_runs", null=True, blank=True, on_delete=models.CASCADE)
    integration_of = models.ForeignKey("MailingList", related_name="integration_runs", null=True, blank=True,
                                       on_delete=models.CASCADE)
    newest = models.BooleanField(default=False)
    given_base = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=QUEUED, db_index=True)
    chain = models.JSONField(default=list)  # revision msgids in apply order
    cache_key = models.CharField(max_length=64, blank=True, db_index=True)
    base = models.CharField(max_length=64, blank=True)
    base_rule = models.CharField(max_length=20, blank=True)
    base_attempts = models.JSONField(default=list)
    progress = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    head = models.CharField(max_length=64, blank=True)
    tree_sha = models.CharField(max_length=64, blank=True)
    ref = models.CharField(max_length=200, blank=True)
    applied = models.JSONField(default=list)
    failed = models.JSONField(null=True, blank=True)
    cached = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Claimed work carries a lease (reviewapp.services.leases): the worker running it
    # pushes lease_until forward; past it, the reaper re-queues the row once, then fails it.
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    requeues = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created"]


class ChainBundle(models.Model):
    """A run's commits (base..head) as a git bundle, so a chain made on one host reaches
    every other host's mirror through the database (services/results.py). Commits are
    deterministic: one bundle per (tree, head), whichever run made it."""
    tree = models.ForeignKey(Tree, related_name="bundles", on_delete=models.CASCADE)
    head = models.CharField(max_length=64)
    base = models.CharField(max_length=64)
    data = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tree", "head"], name="chainbundle_tree_head")]


class Suite(models.Model):
    """A suite is data: steps, timeouts and the tree paths it needs."""
    name = models.CharField(max_length=100, unique=True)
    definition = models.JSONField()

    def __str__(self):
        return self.name


class SuiteRun(models.Model):
    class Status(models.TextChoices):
        QUEUED, RUNNING = "queued", "running"
        PASS, FAIL, TIMEOUT, CRASHED, ERROR = "pass", "fail", "timeout", "crashed", "error"
    QUEUED, RUNNING = Status.QUEUED, Status.RUNNING
    VERDICTS = (Status.PASS, Status.FAIL, Status.TIMEOUT, Status.CRASHED, Status.ERROR)  # a finished run
    apply_run = models.ForeignKey(ApplyRun, related_name="suite_runs", on_delete=models.CASCADE)
    suite = models.ForeignKey(Suite, related_name="runs", on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=QUEUED, db_index=True)
    step = models.CharField(max_length=40, blank=True)
    tests = models.JSONField(default=list)
    log = models.TextField(blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Claimed work carries a lease (reviewapp.services.leases): the worker running it
    # pushes lease_until forward; past it, the reaper re-queues the row once, then fails it.
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    requeues = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created"]


class SuiteArtifact(models.Model):
    """A file a suite run keeps for download (the built kernel, its .config), stored in the
    database so any web host serves it, whichever worker built it."""
    suite_run = models.ForeignKey(SuiteRun, related_name="artifacts", on_delete=models.CASCADE)
    name = models.CharField(max_length=40)
    data = models.BinaryField()
    size = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["suite_run", "name"], name="suiteartifact_run_name")]


class Subscription(models.Model):
    address = models.CharField(max_length=300)
    name = models.CharField(max_length=100, blank=True)
    period = models.CharField(max_length=10, default="weekly")
    lists = models.JSONField(default=list)
    trees = models.JSONField(default=list)
    paths = models.JSONField(default=list)
    watched = models.JSONField(default=list)  # revision msgids
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)


class Digest(models.Model):
    class State(models.TextChoices):
        COMPOSED, SENT, EMPTY, FAILED = "composed", "sent", "empty", "failed"
    COMPOSED, SENT, EMPTY, FAILED = State.COMPOSED, State.SENT, State.EMPTY, State.FAILED
    subscription = models.ForeignKey(Subscription, related_name="digests", on_delete=models.CASCADE)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    message_id = models.CharField(max_length=300, unique=True)
    in_reply_to = models.CharField(max_length=300, blank=True)
    subject = models.TextField()
    body = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=COMPOSED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    sending_since = models.DateTimeField(null=True, blank=True)
    sent = models.DateTimeField(null=True, blank=True)
    # A sender's lease (services/leases.py): a composed digest whose lease is live is
    # being sent; past it, the reaper re-queues it once, then fails it ("worker lost").
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    requeues = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscription", "period_start"],
                                               name="digest_once_per_period")]


class AuditLog(models.Model):
    user = models.CharField(max_length=150)
    action = models.CharField(max_length=100)
    target = models.TextField()
    allowed = models.BooleanField()
    created = models.DateTimeField(auto_now_add=True)
    count = models.PositiveIntegerField(default=1)  # refusals: one row per actor/action/target/day
    last = models.DateTimeField(null=True, blank=True)


class QuarantinedMail(models.Model):
    """A mail an import could not store: kept as it came, with the reason."""
    digest = models.CharField(max_length=64, unique=True)  # sha256 of raw: quarantined once
    msgid = models.CharField(max_length=500, blank=True)  # as it claims, cut to fit
    source = models.TextField(blank=True)  # the file, URL or list it came from
    reason = models.TextField()
    raw = models.BinaryField()
    size = models.PositiveBigIntegerField(default=0)  # bytes as received (raw may be cut)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.msgid or '?'}: {self.reason}"


class SyncCursor(models.Model):
    """The last commit of one epoch of a followed list whose mail is stored."""
    mailing_list = models.ForeignKey(MailingList, related_name="sync_cursors", on_delete=models.CASCADE)
    epoch = models.PositiveIntegerField()
    last_commit = models.CharField(max_length=64, blank=True, default="")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailing_list", "epoch"], name="sync_cursor_epoch")]


class SyncRun(models.Model):
    """One sync of a followed list: claimed by conditional update, counts and error kept."""
    class Status(models.TextChoices):
        QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    QUEUED, RUNNING, DONE, FAILED = Status.QUEUED, Status.RUNNING, Status.DONE, Status.FAILED
    mailing_list = models.ForeignKey(MailingList, related_name="sync_runs", on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=QUEUED, db_index=True)
    source = models.CharField(max_length=10, blank=True, default="")  # "git" or "search"
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    epochs = models.JSONField(default=list)
    read = models.PositiveIntegerField(default=0)  # mails read from the archive
    stored = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # The worker's lease (services/leases.py), like apply and suite runs.
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    requeues = models.PositiveSmallIntegerField(default=0)


class PageGeneration(models.Model):
    """One row: moved by database triggers on every committed write (reviewapp.pagecache).
    `epoch` is random per row, so a counter recreated after a TRUNCATE never repeats a key."""
    id = models.PositiveSmallIntegerField(primary_key=True)
    epoch = models.BigIntegerField()
    value = models.BigIntegerField(default=0)


class PageDirty(models.Model):
    """PostgreSQL: the transactions that wrote and have not committed yet (reviewapp.pagecache)."""
    txid = models.BigIntegerField(primary_key=True)


class ReviewState(models.Model):
    """Where the review of one revision stands (untangle.review), computed by the worker
    when mail arrives and read by pages and the API. `data` has the API's shape."""
    revision = models.OneToOneField(Revision, related_name="review", on_delete=models.CASCADE)
    state = models.CharField(max_length=20, db_index=True)  # reviewed, partly-reviewed, objections, commented, waiting
    patches = models.PositiveIntegerField(default=0)
    reviewed = models.PositiveIntegerField(default=0)  # patches with a review trailer that is not stale
    stale = models.PositiveIntegerField(default=0)  # patches whose only review trailers are stale
    objections_open = models.PositiveIntegerField(default=0)
    tree = models.CharField(max_length=100, blank=True)  # whose MAINTAINERS named the expected reviewers
    # In the reviewer queues: the newest revision of its series and not merged into a tree.
    open = models.BooleanField(default=True)
    waiting_since = models.DateTimeField(null=True, blank=True)  # the revision's date
    # The revision's, copied so the queue's filters read this table alone (100k revisions).
    series = models.ForeignKey(Series, null=True, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField(default=1)
    mailing_list = models.ForeignKey(MailingList, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    files = models.TextField(blank=True, default="")  # "\n" + one changed path a line (at most FILES_KEPT)
    data = models.JSONField(default=dict)
    computed = models.DateTimeField(auto_now=True)

    FILES_KEPT = 2000

    class Meta:
        indexes = [models.Index(fields=["open", "waiting_since", "id"], name="review_queue_order")]


class ReviewPerson(models.Model):
    """Who stands where in a revision's review, for the reviewer queues (/review/?reviewer=)."""
    EXPECTED, REVIEWED, COMMENTED = "expected", "reviewed", "commented"
    revision = models.ForeignKey(Revision, related_name="review_people", on_delete=models.CASCADE)
    series = models.ForeignKey(Series, related_name="review_people", on_delete=models.CASCADE)
    version = models.PositiveIntegerField(default=1)
    email = models.CharField(max_length=300)
    role = models.CharField(max_length=10)
    name = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["revision", "email", "role"], name="review_person_once")]
        indexes = [models.Index(fields=["email", "role"], name="review_person_by_email"),
                   models.Index(fields=["series", "email", "role"], name="review_person_in_series")]


class ReviewQueueEntry(models.Model):
    """One filter value under which an open revision appears in the reviewer queues: a person
    (expected, commented, or reviewed an earlier revision), a person's "new since I reviewed",
    a path (every file and directory it changes) or its list. Written only for open revisions
    and rewritten with their ReviewState, so a filtered queue page is one index range read in
    waiting order, whatever the archive's size."""
    PERSON, NEW, PATH, LIST = "p", "n", "f", "l"
    revision = models.ForeignKey(Revision, related_name="+", on_delete=models.CASCADE)
    kind = models.CharField(max_length=1)
    key = models.CharField(max_length=300)
    waiting_since = models.DateTimeField(null=True, blank=True)
    roles = models.CharField(max_length=60, blank=True)  # PERSON: "commented,expected"; empty: an earlier revision

    PATH_KEYS_KEPT = 400  # per revision: its directories first, then files

    class Meta:
        constraints = [models.UniqueConstraint(fields=["revision", "kind", "key"], name="review_queue_entry_once")]
        indexes = [models.Index(fields=["kind", "key", "waiting_since", "revision"], name="review_queue_by_key")]


class InflightConflict(models.Model):
    """Two open series of a list whose applied chains do not merge (services/inflight.py):
    the files and hunks of both sides, from an in-memory three-way merge over what they share."""
    mailing_list = models.ForeignKey(MailingList, related_name="inflight_conflicts", on_delete=models.CASCADE)
    a = models.ForeignKey(Revision, related_name="+", on_delete=models.CASCADE)
    b = models.ForeignKey(Revision, related_name="+", on_delete=models.CASCADE)
    a_run = models.ForeignKey(ApplyRun, null=True, related_name="+", on_delete=models.SET_NULL)
    b_run = models.ForeignKey(ApplyRun, null=True, related_name="+", on_delete=models.SET_NULL)
    ancestor = models.CharField(max_length=64)  # the merge base: the tree's commit or their shared chain
    files = models.JSONField(default=list)  # [{"path", "kind", "hunks": [{"ours", "theirs", "truncated"}], "hunk_count"}]
    file_count = models.PositiveIntegerField(default=0)
    hunk_count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField(default=timezone.now)  # kept across recomputations: "new since" in digests
    computed = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["a", "b"], name="inflight_conflict_once")]
        indexes = [models.Index(fields=["b"], name="inflight_conflict_by_b")]


class InflightState(models.Model):
    """The last in-flight computation of a list (services/inflight.py): its open series with
    their apply state, and how many pairs were compared; the conflicts are InflightConflict rows."""
    mailing_list = models.OneToOneField(MailingList, related_name="inflight", on_delete=models.CASCADE)
    tree = models.CharField(max_length=100)
    open = models.JSONField(default=list)  # [{"msgid", "title", "version", "apply", "run", "error"}]
    pairs_compared = models.PositiveIntegerField(default=0)
    pairs_left_out = models.PositiveIntegerField(default=0)
    # The integration branch: {"ref", "branch", "base", "head", "included": [...], "skipped": [...]}
    integration = models.JSONField(default=dict)
    # What the next computation may reuse (merges and diffs are functions of commit ids):
    # each applied head's changed paths, and the pairs of heads that merged cleanly.
    changed = models.JSONField(default=dict)  # {"<base>..<head>": [paths]}
    clean_pairs = models.JSONField(default=list)  # ["<ours head>:<theirs head>"]
    computed = models.DateTimeField(auto_now=True)
