"""API endpoints. GETs read stored rows and snapshots; POSTs call the web UI's services."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, serializers as s, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from untangle import msgid as msgids

from ..models import ApplyRun, FetchRequest, MailingList, Revision, Series, Subscription, Suite, SuiteRun, Tree
from ..selectors import conflicts_of, inflight_of, review_of, revision_or_404
from ..services import apply as apply_service, fetch, suites, sync, trees
from ..services.graph import latest_snapshot
from . import filters, serializers as ser
from .access import MaintainerOnly, MaintainerWrites
from .mbox import mbox_of
from ..wording import not_needed_sentence

class UnknownName(APIException):
    """A trigger names a revision, tree, run or suite we do not have: 404 naming the field."""
    status_code = 404
    default_detail = "not found"


ERRORS = {401: ser.ErrorSerializer, 403: ser.ErrorSerializer}
MBOX = "application/mbox"


# Django's <path:> route matches no line breaks; other control characters cannot be in a msgid.
MSGID = OpenApiParameter("msgid", {"type": "string", "pattern": r"^[^\x00-\x1f\x7f]+$", "maxLength": 500},
                         OpenApiParameter.PATH)


def _id(name: str) -> OpenApiParameter:
    # Django's <int:> route matches digits only: say so, or a client may send "-1".
    return OpenApiParameter(name, {"type": "integer", "minimum": 0}, OpenApiParameter.PATH)


def _revision(msgid: str) -> Revision:
    if len(msgid) > filters.MAX_VALUE or "\x00" in msgid:
        raise Http404("no such revision")
    return revision_or_404(msgids.bare(msgid))


class ListList(generics.ListAPIView):
    """Mailing lists mail was ingested from."""
    serializer_class = ser.ListSerializer
    queryset = MailingList.objects.all()


class SeriesList(filters.Filtered, generics.ListAPIView):
    """Series (families of revisions), filtered by any of their revisions."""
    serializer_class = ser.SeriesSerializer
    model = Series

    @extend_schema(parameters=filters.REVISION_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def filtered(self):
        qs = Series.objects.prefetch_related("revisions__mailing_list")
        return filters.revisions(qs, self.request, prefix="revisions__")


class RevisionList(filters.Filtered, generics.ListAPIView):
    """Revisions (one posting of a series)."""
    serializer_class = ser.RevisionBriefSerializer
    model = Revision

    @extend_schema(parameters=filters.REVISION_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def filtered(self):
        qs = Revision.objects.select_related("mailing_list").live()
        return filters.revisions(qs, self.request)


@extend_schema_view(get=extend_schema(parameters=[MSGID]))
class RevisionDetail(generics.RetrieveAPIView):
    """One revision with its patches, trailers, base, prerequisites and dependencies (with evidence)."""
    serializer_class = ser.RevisionSerializer
    queryset = Revision.objects.none()

    def get_object(self):
        rev = _revision(self.kwargs["msgid"])
        return (Revision.objects.select_related("mailing_list", "previous")
                .prefetch_related("patches__message", "patches__files", "patches__trailers__message",
                                  "dependencies__target_revision").get(id=rev.id))


class RevisionGraph(APIView):
    """The stored dependency graph of a revision (never computed here: 404 if none is stored)."""

    @extend_schema(parameters=[MSGID], responses={200: inline_serializer("StoredGraph", {
        "root": s.CharField(), "computed": s.DateTimeField(), "graph": s.JSONField(),
        "changes": s.JSONField()}), 404: ser.ErrorSerializer})
    def get(self, request, msgid):
        rev = _revision(msgid)
        snap = latest_snapshot(rev)
        if snap is None:
            raise Http404(f"no stored graph for <{rev.msgid}>: a maintainer can compute one "
                          f"from the series page or `manage.py graph`")
        data = dict(snap.data)
        names = {n["msgid"]: n["label"] for n in data.get("nodes", [])}
        data["unneeded"] = [dict(u, detail=not_needed_sentence(u, rev.msgid, names))
                            for u in data.get("unneeded", [])]  # structured, plus its sentence
        return Response({"root": rev.msgid, "computed": snap.computed, "graph": data,
                         "changes": snap.changes})


class RevisionReview(APIView):
    """Where the review of a revision stands, and of every revision its chain needs
    (stored by the worker when mail arrives; 404 if not computed yet)."""

    @extend_schema(parameters=[MSGID], responses={200: inline_serializer("ReviewState", {
        "msgid": s.CharField(), "state": s.CharField(), "computed": s.DateTimeField(),
        "summary": s.JSONField(), "cover": s.JSONField(allow_null=True), "patches": s.JSONField(),
        "chain": s.JSONField()}), 404: ser.ErrorSerializer})
    def get(self, request, msgid):
        rev = _revision(msgid)
        data = review_of(rev)
        if data is None:
            raise Http404(f"no stored review state for <{rev.msgid}>: the worker computes it when "
                          f"mail arrives, or run `manage.py review`")
        return Response(data)


class RevisionConflicts(APIView):
    """The open series of its list this revision's applied chain does not merge with
    (stored by the in-flight computation of the list: `manage.py inflight`)."""

    @extend_schema(parameters=[MSGID], responses={200: inline_serializer("RevisionConflicts", {
        "msgid": s.CharField(), "conflicts": s.JSONField()}), 404: ser.ErrorSerializer})
    def get(self, request, msgid):
        rev = _revision(msgid)
        return Response({"msgid": rev.msgid, "conflicts": conflicts_of(rev)})


class ListInflight(APIView):
    """A list's series in flight: open series with their apply state, and the pairs that conflict."""

    @extend_schema(responses={200: inline_serializer("ListInflight", {
        "list": s.CharField(), "tree": s.CharField(), "computed": s.DateTimeField(), "open": s.JSONField(),
        "pairs_compared": s.IntegerField(), "pairs_left_out": s.IntegerField(), "conflicts": s.JSONField(),
        "integration": s.JSONField()}),
        404: ser.ErrorSerializer})
    def get(self, request, name):
        mlist = MailingList.objects.filter(name=name).first()
        if mlist is None:
            raise Http404(f"no mailing list named {name[:100]!r}")
        data = inflight_of(mlist)
        if data is None:
            raise Http404(f"nothing computed in flight for {mlist.name}: run `manage.py inflight {mlist.name}`")
        return Response(data)


def _mbox_response(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text.encode("utf-8"), content_type=f"{MBOX}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.mbox"'
    return response


class RevisionMbox(APIView):
    """The revision's patches as an am-ready mbox (review trailers folded in, cover left out)."""

    @extend_schema(parameters=[MSGID], responses={(200, MBOX): OpenApiTypes.STR, 404: ser.ErrorSerializer})
    def get(self, request, msgid):
        rev = _revision(msgid)
        return _mbox_response(mbox_of([rev]), f"revision-{rev.id}")


class ChainMbox(APIView):
    """An apply run's whole chain in apply order as one am-ready mbox (covers left out)."""

    @extend_schema(parameters=[_id("run_id")], responses={(200, MBOX): OpenApiTypes.STR, 404: ser.ErrorSerializer})
    def get(self, request, run_id):
        run = get_object_or_404(ApplyRun, id=run_id)
        if not run.chain:
            raise Http404(f"apply run {run.id} has no chain yet ({run.status})")
        revs = {r.msgid: r for r in Revision.objects.filter(msgid__in=run.chain)}
        if len(revs) != len(set(run.chain)):
            raise Http404(f"a revision of apply run {run.id}'s chain is gone")
        return _mbox_response(mbox_of([revs[m] for m in run.chain]), f"chain-{run.id}")


class TreeList(generics.ListAPIView):
    serializer_class = ser.TreeSerializer
    queryset = Tree.objects.all()


class TreeFetch(APIView):
    """Fetch a tree's mirror from its source (maintainers)."""
    permission_classes = [MaintainerWrites]
    audit_action = "tree-fetch"

    @extend_schema(request=None, responses={202: ser.TreeSerializer,
                                            409: ser.ErrorSerializer, **ERRORS})
    def post(self, request, name):
        tree = get_object_or_404(Tree, name=name)
        if not trees.request_fetch(tree):
            return Response({"detail": f"{tree.name} is already being fetched"}, status=status.HTTP_409_CONFLICT)
        tree.refresh_from_db()
        return Response(ser.TreeSerializer(tree).data, status=status.HTTP_202_ACCEPTED)


class ApplyRuns(filters.Filtered, generics.ListCreateAPIView):
    """Apply runs; POST (maintainers) queues one, like the series page's Apply button."""
    serializer_class = ser.ApplyRunSerializer
    model = ApplyRun
    permission_classes = [MaintainerWrites]
    audit_action = "apply"

    @extend_schema(parameters=[filters.p("tree", "tree name"), filters.p("status", "run status"),
                               filters.p("root", "msgid of the applied revision")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def filtered(self):
        qs = ApplyRun.objects.select_related("tree", "root", "integration_of")
        if (v := filters.param(self.request, "tree")) is not None:
            qs = qs.filter(tree__name=v)
        if (v := filters.param(self.request, "status")) is not None:
            qs = qs.filter(status=v)
        if (v := filters.param(self.request, "root")) is not None:
            qs = qs.filter(root__msgid=msgids.bare(v))
        return qs

    @extend_schema(request=ser.ApplyRequestSerializer,
                   responses={202: ser.ApplyRunSerializer, **ERRORS})
    def post(self, request, *args, **kwargs):
        data = _valid(ser.ApplyRequestSerializer, request)
        try:
            rev = _revision(data["revision"])
        except Http404 as exc:
            raise UnknownName({"revision": str(exc)})
        try:
            tree = trees.get_tree(data["tree"])
        except trees.TreeError as exc:
            raise UnknownName({"tree": str(exc)})
        run = apply_service.request_apply(rev, tree, base=(data.get("base") or "").strip() or None,
                                          newest=data["newest"], user=request.user)
        return Response(ser.ApplyRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(get=extend_schema(parameters=[_id("run_id")]))
class ApplyRunDetail(generics.RetrieveAPIView):
    serializer_class = ser.ApplyRunSerializer
    queryset = ApplyRun.objects.select_related("tree", "root", "integration_of")
    lookup_url_kwarg = "run_id"


class SuiteRuns(filters.Filtered, generics.ListCreateAPIView):
    """Suite runs with their tests; POST (maintainers) queues a fresh one on an applied chain."""
    serializer_class = ser.SuiteRunSerializer
    model = SuiteRun
    permission_classes = [MaintainerWrites]
    audit_action = "suite"

    @extend_schema(parameters=[filters.p("apply_run", "apply run id", OpenApiTypes.INT),
                               filters.p("suite", "suite name"), filters.p("status", "run status")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def filtered(self):
        qs = SuiteRun.objects.select_related("suite")
        if (v := filters.integer(self.request, "apply_run")) is not None:
            qs = qs.filter(apply_run_id=v)
        if (v := filters.param(self.request, "suite")) is not None:
            qs = qs.filter(suite__name=v)
        if (v := filters.param(self.request, "status")) is not None:
            qs = qs.filter(status=v)
        return qs

    @extend_schema(request=ser.SuiteRequestSerializer,
                   responses={202: ser.SuiteRunSerializer,
                              409: ser.ErrorSerializer, **ERRORS})
    def post(self, request, *args, **kwargs):
        data = _valid(ser.SuiteRequestSerializer, request)
        apply_run = ApplyRun.objects.select_related("root").filter(id=data["apply_run"]).first()
        if apply_run is None:
            raise UnknownName({"apply_run": f"no apply run {data['apply_run']}"})
        name = (data.get("suite") or suites.DEFAULT_NAME).strip()
        suite = (suites.ensure_default_suite() if name == suites.DEFAULT_NAME
                 else Suite.objects.filter(name=name).first())
        if suite is None:
            raise UnknownName({"suite": f"no suite {name}"})
        try:
            run = suites.request_run(apply_run, suite, user=request.user, force=True)
        except suites.NotApplied as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(ser.SuiteRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(get=extend_schema(parameters=[_id("run_id")]))
class SuiteRunDetail(generics.RetrieveAPIView):
    serializer_class = ser.SuiteRunSerializer
    queryset = SuiteRun.objects.select_related("suite")
    lookup_url_kwarg = "run_id"


class Fetches(generics.ListCreateAPIView):
    """Thread fetches from lore; POST (maintainers) queues one, like the search box does."""
    serializer_class = ser.FetchSerializer
    permission_classes = [MaintainerWrites]
    audit_action = "fetch"
    queryset = FetchRequest.objects.all()

    @extend_schema(request=ser.FetchRequestSerializer,
                   responses={202: ser.FetchSerializer, **ERRORS})
    def post(self, request, *args, **kwargs):
        data = _valid(ser.FetchRequestSerializer, request)
        try:
            req, _ = fetch.queue_fetch(data["ref"])
        except ValueError as exc:
            raise ValidationError({"ref": str(exc)})
        return Response(ser.FetchSerializer(req).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(get=extend_schema(parameters=[_id("request_id")]))
class FetchDetail(generics.RetrieveAPIView):
    serializer_class = ser.FetchSerializer
    queryset = FetchRequest.objects.all()
    lookup_url_kwarg = "request_id"


class Subscriptions(generics.ListAPIView):
    """Digest subscriptions (maintainers only: they hold addresses)."""
    serializer_class = ser.SubscriptionSerializer
    permission_classes = [MaintainerOnly]
    queryset = Subscription.objects.all()


# ------------------------------------------------------------------ list sync


class ListSync(APIView):
    """Sync a mailing list from lore now (maintainers); calls services.sync.request_sync."""
    permission_classes = [MaintainerWrites]
    audit_action = "sync"

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT, 404: ser.ErrorSerializer,
                                            409: ser.ErrorSerializer, **ERRORS})
    def post(self, request, name):
        mailing_list = get_object_or_404(MailingList, name=name)
        try:
            queued = sync.request_sync(mailing_list, user=request.user)
        except sync.SyncError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(queued, status=status.HTTP_202_ACCEPTED)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
