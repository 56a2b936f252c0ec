"""Query parameters read strictly: a malformed value is a 400 naming it (BadRequest,
answered by reviewapp.web.errors.bad_request), never a silent guess or a 500.

An empty or absent value means "not given" everywhere.
"""
from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import BadRequest
from django.core.paginator import EmptyPage, Paginator
from django.http import Http404
from django.utils.dateparse import parse_date

_DIGITS = re.compile(r"[0-9]{1,18}")  # below 2**63: fits every integer column
MAX_PAGE = 10 ** 6


def _shown(value: str) -> str:
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def number(params, name: str, maximum: int, minimum: int = 0) -> int | None:
    """A whole number in [minimum, maximum], None when absent."""
    value = (params.get(name) or "").strip()
    if not value:
        return None
    if not _DIGITS.fullmatch(value) or not minimum <= int(value) <= maximum:
        raise BadRequest(f"{name} must be a whole number from {minimum} to {maximum}, not {_shown(value)}")
    return int(value)


def day(params, name: str) -> dt.date | None:
    """A date as YYYY-MM-DD, None when absent."""
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        parsed = parse_date(value) if len(value) == 10 else None
    except ValueError:  # 2021-02-30
        parsed = None
    if parsed is None:
        raise BadRequest(f"{name} must be a date YYYY-MM-DD, not {_shown(value)}")
    return parsed


def choice(params, name: str, choices: tuple[str, ...]) -> str:
    """One of choices, "" when absent."""
    value = (params.get(name) or "").strip()
    if value and value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, not {_shown(value)}")
    return value


def flag(params, name: str) -> bool:
    """name=1 on, absent (or name=0) off."""
    return choice(params, name, ("0", "1")) == "1"


def page(paginator: Paginator, params, name: str = "page"):
    """The page asked for (1 when absent); past the last page is a 404."""
    n = number(params, name, MAX_PAGE, minimum=1) or 1
    try:
        return paginator.page(n)
    except EmptyPage as exc:
        raise Http404(f"no {name} {n}: there are {paginator.num_pages}") from exc
