"""Shared bits of the CLI contract: JSON on stdout, errors on stderr with exit 1,
and turning MSGID_OR_URL / --tree NAME arguments into rows."""
import json

from django.core.management.base import CommandError

from untangle import lore

from ...services import fetch, trees
from ...selectors import revision_of_msgid


def emit(command, data: dict, as_json: bool, text: str | None = None) -> None:
    if as_json:
        command.stdout.write(json.dumps(data, indent=1, default=str))
    else:
        command.stdout.write(text if text is not None else json.dumps(data, indent=1, default=str))


def fail(message: str) -> CommandError:
    return CommandError(message, returncode=1)


def add_json_flag(*parsers) -> None:
    for parser in parsers:
        parser.add_argument("--json", action="store_true")


def msgid_of(ref: str) -> str:
    """The message-id a MSGID_OR_URL argument names."""
    try:
        return lore.parse_ref(ref)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def tree_named(name: str):
    try:
        return trees.get_tree(name)
    except trees.TreeError as exc:
        raise fail(str(exc)) from exc


def revision_for(msgid: str, fetch_missing: bool = True):
    """The stored Revision of msgid; one not ingested yet is fetched from LORE_URL
    (like `ingest --msgid`) when fetch_missing, else it is an error."""
    rev = revision_of_msgid(msgid)
    if rev is not None:
        return rev
    if not fetch_missing:
        raise fail(f"no series stored for <{msgid}> (try --fetch)")
    try:
        fetch.fetch_thread(msgid)
    except lore.FetchError as exc:
        raise fail(f"<{msgid}> is not known and fetching it failed: {exc}") from exc
    rev = revision_of_msgid(msgid)
    if rev is None:
        raise fail(f"<{msgid}> is not a patch series")
    return rev
