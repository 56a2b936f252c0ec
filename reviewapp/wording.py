"""English made at the edge: sentences for the structured results the layers below return.

Pages, the CLI and the API call these with the labels they show (a stored graph's node
"label"s), so a reason is stored once as data and worded in one place.
"""
from __future__ import annotations

from collections.abc import Mapping

from untangle.graph import NotNeeded, Reason

_FIXED = {
    Reason.SAME_SERIES_AS_ROOT.value: "it is another revision of the same series",
    Reason.UNTOUCHED.value: "nothing of it is referenced or touched",
    Reason.UNREFERENCED.value: "nothing of it is referenced (touched files unknown)",
    Reason.BUILT_ON_ROOT.value: "it is built on it, not the other way round",
    Reason.MENTIONS_ROOT.value: "it only mentions it",
    Reason.UNRELATED.value: "nothing in its chain refers to it",
}


def not_needed_reason(item: NotNeeded, names: Mapping[str, str]) -> str:
    """The reason part: "it is only mentioned (related link from X v2), nothing depends on it"."""
    def name(m):
        return names.get(m, m) if m else ""
    if item.reason in _FIXED:
        text = _FIXED[item.reason]
    elif item.reason == Reason.SAME_SERIES_IN_CHAIN.value:
        text = f"the chain uses {name(item.other)} of the same series"
    elif item.reason == Reason.BUILT_ON_OTHER.value:
        text = f"nothing in its chain refers to it (it is built on {name(item.other)} too)"
    elif item.reason == Reason.ONLY_MENTIONED.value:
        text = f"it is only mentioned ({item.link or 'related'} link from {name(item.other)}), nothing depends on it"
        if item.files:
            which = "its only file is not" if item.files == 1 else f"none of its {item.files} files is"
            text += f", and {which} touched by the chain"
    else:
        text = item.reason
    if item.shared:
        more = ", ..." if len(item.shared) > 3 else ""
        text += (f"; it touches {len(item.shared)} file(s) the chain also changes "
                 f"({', '.join(item.shared[:3])}{more}), so it may conflict")
    return text


def not_needed_sentence(item: NotNeeded | Mapping, root: str, names: Mapping[str, str]) -> str:
    """"X v1 is not needed by Y v3: <reason>". Takes the stored JSON form too; a snapshot
    stored before reasons were structured carries its sentence in "detail"."""
    if isinstance(item, Mapping):
        if "reason" not in item:
            return str(item.get("detail", ""))
        item = NotNeeded.from_json(dict(item))
    return (f"{names.get(item.msgid, item.msgid)} is not needed by {names.get(root, root)}: "
            + not_needed_reason(item, names))
