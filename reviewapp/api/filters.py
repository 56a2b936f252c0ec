"""Query-string filters shared by the list endpoints; bad values get a 400, not a 500."""
from django.db.models import Q
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from datetime import datetime, time, timezone

from untangle import msgid as msgids

STATES = ("complete", "incomplete")
MAX_VALUE = 500  # every filter value is a short string; bound what an outsider sends


class NoMatch(Exception):
    """A value no stored row can hold (stored text never has NUL): the answer is empty."""


def param(request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_VALUE:
        raise ValidationError({name: f"at most {MAX_VALUE} characters"})
    if "\x00" in value:
        raise NoMatch(name)
    return value


def integer(request, name: str) -> int | None:
    value = param(request, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValidationError({name: "an integer"})
    if not -2**63 <= number < 2**63:  # no row has such an id (and SQLite cannot bind it)
        raise NoMatch(name)
    return number


class Filtered:
    """A list view mixin: get_queryset is self.filtered(), or nothing when a value cannot match."""
    model = None

    def get_queryset(self):
        try:
            return self.filtered()
        except NoMatch:
            return self.model.objects.none()


def since(request) -> datetime | None:
    value = param(request, "since")
    if value is None:
        return None
    try:
        parsed = parse_datetime(value) or _isoformat(value)
        if parsed is None and (day := parse_date(value)):
            parsed = datetime.combine(day, time.min)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise ValidationError({"since": "an ISO 8601 date or date-time"})
    if not parsed.tzinfo:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        # In UTC: PostgreSQL refuses offsets such as -19:04 that Python accepts.
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValidationError({"since": "a date-time that exists in UTC"})


def _isoformat(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        return None


def p(name: str, description: str, type_=OpenApiTypes.STR) -> OpenApiParameter:
    if type_ == OpenApiTypes.STR:
        type_ = {"type": "string", "maxLength": MAX_VALUE}
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, required=False, description=description)


REVISION_PARAMS = [
    p("list", "mailing list name"),
    p("author", "author email (exact, case-insensitive) or part of the name"),
    OpenApiParameter("state", str, OpenApiParameter.QUERY, required=False, enum=STATES,
                     description="complete or incomplete"),
    p("since", "posted at or after (ISO 8601)", OpenApiTypes.DATETIME),
    p("msgid", "a message-id of the revision: its own, a patch's or its cover's"),
    p("change_id", "the b4 change-id"),
    p("path", "a file path one of its patches touches"),
]


def revisions(qs, request, prefix: str = ""):
    """Filter a Revision queryset (prefix "revisions__" for a Series one)."""
    f = lambda field: prefix + field  # noqa: E731
    if (v := param(request, "list")) is not None:
        qs = qs.filter(**{f("mailing_list__name"): v})
    if (v := param(request, "author")) is not None:
        qs = qs.filter(Q(**{f("author_email__iexact"): v}) | Q(**{f("author_name__icontains"): v}))
    if (v := param(request, "state")) is not None:
        if v not in STATES:
            raise ValidationError({"state": f"one of {', '.join(STATES)}"})
        qs = qs.filter(**{f("complete"): v == "complete"})
    if (v := since(request)) is not None:
        qs = qs.filter(**{f("date__gte"): v})
    if (v := param(request, "msgid")) is not None:
        v = msgids.bare(v)
        qs = qs.filter(Q(**{f("msgid"): v}) | Q(**{f("messages__msgid"): v}))
    if (v := param(request, "change_id")) is not None:
        qs = qs.filter(**{f("change_id"): v})
    if (v := param(request, "path")) is not None:
        qs = qs.filter(Q(**{f("patches__files__path"): v}) | Q(**{f("patches__files__old_path"): v}))
    return qs.distinct()
