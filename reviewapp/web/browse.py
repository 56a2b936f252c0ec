"""The consolidated tree: browse a chain's head, every line traced to its patch.

URLs are permalinks: /tree/<run id>/... (ApplyRun ids never change) and the
content-addressed /tree/h/<head sha>/... (commits are deterministic, so a re-run
of the same chain has the same head). Both forms serve the same views.
"""
import html
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from untangle import lore

from .. import params
from ..models import Revision, Tree
from ..permissions import is_maintainer
from ..services import provenance as prov
from ..selectors import revision_of_msgid
from ..pagecache import anonymous_cached

URL_SAFE = "/@+=,~!$&'()*;:"
FILE_PAGE_BYTES = 256 * 1024  # bigger files: a plain preview of their start, no per-line provenance


class Links:
    """URLs of one chain's views, in the form (run id or head sha) the page was reached by."""

    def __init__(self, chain: prov.Chain, by_head: bool):
        self.chain = chain
        self.by_head = by_head
        self.run_prefix = reverse("browse-tree", args=[chain.run.id])
        self.head_prefix = reverse("browse-head-tree", args=[chain.head])
        self.prefix = self.head_prefix if by_head else self.run_prefix

    def path(self, p: str, is_dir: bool = False, prefix: str | None = None) -> str:
        prefix = prefix or self.prefix
        if not p:
            return prefix
        escape = "-/" if p.split("/", 1)[0] in prov.RESERVED else ""
        return prefix + escape + quote(p, safe=URL_SAFE) + ("/" if is_dir else "")

    def diff(self) -> str:
        return self.prefix + "diff"

    def series(self, msgid: str) -> str:
        return self.prefix + "series/" + quote(msgid, safe=URL_SAFE)

    def absolute(self, url: str) -> str:
        return settings.BASE_URL + url


def series_url(msgid: str, number: int | None = None) -> str:
    url = reverse("series-detail", args=[msgid])
    return f"{url}#patch-{number}" if number else url


def _chain(run_id=None, sha=None) -> tuple[prov.Chain, Links]:
    try:
        if sha is not None:
            run = prov.run_for_head(sha)
        else:
            run = prov.browsable_runs().filter(id=run_id).first()
            if run is None:
                raise prov.BrowseError(f"no apply run {run_id} with commits to show")
        chain = prov.load_chain(run)
    except prov.BrowseError as e:
        raise Http404(str(e)) from e
    return chain, Links(chain, by_head=sha is not None)


def _chain_context(chain: prov.Chain, links: Links) -> dict:
    revs = [{"ref": r, "url": series_url(r.msgid) if r.obj else None, "own": links.series(r.msgid)}
            for r in chain.revisions]
    return {"chain": chain, "run": chain.run, "links": links, "chain_revs": revs,
            "palette": prov.PALETTE, "diff_url": links.diff(), "root_url": links.prefix}


def _crumbs(links: Links, p: str, only_changed: bool) -> list[tuple[str, str]]:
    q = "?changed=1" if only_changed else ""
    out = [(links.chain.run.tree.name, links.prefix + q)]
    parts = p.split("/") if p else []
    for i, name in enumerate(parts):
        out.append((name, links.path("/".join(parts[:i + 1]), is_dir=True) + q))
    return out


# ---------------------------------------------------------------- tree and file views

@anonymous_cached
def tree_view(request, run_id=None, sha=None, path=""):
    chain, links = _chain(run_id, sha)
    try:
        p = prov.clean_path(path)
        kind = prov.path_kind(chain, p)
        if kind == "tree":
            return _directory(request, chain, links, p)
        return _file(request, chain, links, p, kind)
    except prov.BrowseError as e:
        raise Http404(str(e)) from e
    except KeyError as e:  # a mirror that lost the chain's commits
        raise Http404(f"commit not in the mirror of {chain.run.tree.name}: {e}") from e


def _directory(request, chain, links, p):
    only_changed = params.flag(request.GET, "changed")
    q = "?changed=1" if only_changed else ""
    entries = []
    for e in prov.listing(chain, p, only_changed):
        is_dir = e["type"] == "tree"
        entries.append(dict(e, url=links.path(e["path"], is_dir) + (q if is_dir else ""), is_dir=is_dir))
    touched = prov.touched_paths(chain)
    changed = prov.changed_paths(chain)
    changed_list = []
    if not p:
        for f in sorted(touched):
            revs = sorted({r.revision.colour: r.revision for r in touched[f] if r.revision}.values(),
                          key=lambda r: r.colour)
            changed_list.append({"path": f, "url": links.path(f), "revs": revs,
                                 "gone": f not in changed or _absent(chain, f),
                                 "patches": touched[f]})
    ctx = _chain_context(chain, links)
    ctx.update(path=p, entries=entries, only_changed=only_changed, crumbs=_crumbs(links, p, only_changed),
               toggle_url=links.path(p, is_dir=True) + ("" if only_changed else "?changed=1"),
               changed_list=changed_list, permalink=links.absolute(links.path(p, True, links.head_prefix)),
               run_link=links.absolute(links.path(p, True, links.run_prefix)))
    return render(request, "browse/tree.html", ctx)


def _absent(chain, f) -> bool:
    try:
        prov.path_kind(chain, f)
        return False
    except prov.BrowseError:
        return True


def _file(request, chain, links, p, kind):
    ctx = _chain_context(chain, links)
    ctx.update(path=p, crumbs=_crumbs(links, p, False),
               permalink=links.absolute(links.path(p, prefix=links.head_prefix)),
               run_link=links.absolute(links.path(p, prefix=links.run_prefix)),
               touched_by=prov.touched_paths(chain).get(p, []))
    if kind != "blob":
        ctx.update(note=f"{p} is a {'submodule' if kind == 'commit' else kind} entry")
        return render(request, "browse/file.html", ctx)
    text, size = prov.read_text(chain, p)
    ctx["size"] = size
    if text is None:
        ctx.update(note=f"binary file, {size} bytes")
        return render(request, "browse/file.html", ctx)
    if size > FILE_PAGE_BYTES:  # blame and highlighting of a huge file would take seconds and GBs
        head = text[:FILE_PAGE_BYTES].rsplit("\n", 1)[0]
        ctx.update(note=f"{size:,} bytes: too large for line provenance here; the first "
                        f"{head.count(chr(10)) + 1:,} lines follow as plain text", preview=head)
        return render(request, "browse/file.html", ctx)
    owners = prov.line_owners(chain, p)
    code = prov.highlight(text, p)
    if len(code) != len(owners):  # never expected: git and we disagree on what a line is
        code = (code + [""] * len(owners))[:len(owners)]
    rows, patch_data, stats = _rows(chain, owners, code)
    ctx.update(rows=mark_safe(rows), patch_data=patch_data, line_count=len(owners), stats=stats)
    return render(request, "browse/file.html", ctx)


def _rows(chain: prov.Chain, owners: list, code: list[str]) -> tuple[str, list[dict], list[dict]]:
    """The file table's rows as one HTML string: Django templates are too slow for
    thousands of rows (a 5,000-line file must render well under a second)."""
    index = {p.commit: i for i, p in enumerate(chain.patches)}
    data = [_patch_json(p) for p in chain.patches]
    bands = {}
    for p in chain.patches:
        url = html.escape(series_url(p.revision.msgid, p.number) if p.revision and p.revision.obj
                          else prov.lore_url(p.msgid))
        css = p.revision.css if p.revision else "sc0"
        i = index[p.commit]
        bands[p.commit] = (f'<a class="band {css}" href="{url}" data-p="{i}" aria-label="{html.escape(p.label)}"></a>',
                           f'<a class="who" href="{url}" data-p="{i}">{html.escape(p.label)}</a>')
    base_band = '<span class="band base"></span>'
    out = []
    prev = 0  # sentinel: differs from every owner and from None
    counts: dict = {}
    for n, (owner, line) in enumerate(zip(owners, code), 1):
        key = owner.commit if owner else None
        counts[key] = counts.get(key, 0) + 1
        band, who = bands[key] if owner else (base_band, '<span class="who base">base</span>')
        label = who if key != prev else ""
        prev = key
        out.append(f'<tr id="L{n}"><td class="b">{band}</td><td class="n"><a href="#L{n}">{n}</a></td>'
                   f'<td class="w">{label}</td><td class="src">{line}</td></tr>')
    stats = [{"rev": r, "lines": sum(counts.get(p.commit, 0) for p in r.patches)} for r in chain.revisions]
    stats = [s for s in stats if s["lines"]] + [{"rev": None, "lines": counts.get(None, 0)}]
    return "\n".join(out), data, stats


def _patch_json(p: prov.PatchRef) -> dict:
    rev = p.revision
    return {"label": p.label, "subject": p.subject, "author": p.author,
            "date": p.date.strftime("%Y-%m-%d %H:%M") if p.date else "", "msgid": p.msgid,
            "lore": prov.lore_url(p.msgid), "commit": p.commit,
            "series": rev.title if rev else "", "version": rev.version if rev else None,
            "series_url": series_url(rev.msgid, p.number) if rev and rev.obj else None,
            "colour": prov.PALETTE[rev.colour % len(prov.PALETTE)] if rev else "#999"}


# ---------------------------------------------------------------- diffs

def _lines_html(pairs) -> str:
    return mark_safe("\n".join(f'<span class="dl {c}">{html.escape(line)}</span>' if c
                               else html.escape(line) for c, line in pairs))


def _file_blocks(links: Links, text: str) -> list[dict]:
    return [{"path": f, "url": links.path(f), "html": _lines_html(prov.diff_lines(d))}
            for f, d in prov.file_sections(text)]


@anonymous_cached
def diff_view(request, run_id=None, sha=None):
    chain, links = _chain(run_id, sha)
    ctx = _chain_context(chain, links)
    combined = params.flag(request.GET, "combined")
    if combined:
        ctx["files"] = _file_blocks(links, prov.whole_diff(chain))
    else:
        groups = []
        for rev, patches in prov.patch_diffs(chain):
            items = [{"p": p, "anchor": f"p-{p.commit[:12]}", "files": _file_blocks(links, d),
                      "url": series_url(rev.msgid, p.number) if rev.obj else None,
                      "lore": prov.lore_url(p.msgid)} for p, d in patches]
            groups.append({"rev": rev, "patches": items, "own": links.series(rev.msgid),
                           "url": series_url(rev.msgid) if rev.obj else None})
        ctx["groups"] = groups
    ctx.update(combined=combined, permalink=links.absolute(links.head_prefix + "diff"),
               run_link=links.absolute(links.run_prefix + "diff"))
    return render(request, "browse/diff.html", ctx)


@anonymous_cached
def series_view(request, msgid, run_id=None, sha=None):
    chain, links = _chain(run_id, sha)
    msgid = msgid.rstrip("/")
    try:
        rev, text = prov.own_diff(chain, msgid)
    except prov.BrowseError:
        other = revision_of_msgid(msgid)  # a patch msgid, or a link to another mail of it
        if other is not None and other.msgid != msgid and other.msgid in chain.run.chain:
            return redirect(links.series(other.msgid))
        raise Http404(f"<{msgid}> is not part of chain {chain.run.id}")
    below = [r for r in chain.revisions if r.colour < rev.colour]
    updates = []
    if rev.obj is not None:
        tree = chain.run.tree.name
        updates = [{"old": o, "new": n, "url": range_diff_url(o, n, tree)}
                   for o, n in prov.dependency_updates(rev.obj, chain)]
    ctx = _chain_context(chain, links)
    ctx.update(rev=rev, below=below, files=_file_blocks(links, text), stat=_stat(text),
               updates=updates, rev_url=series_url(rev.msgid) if rev.obj else None,
               permalink=links.absolute(links.head_prefix + "series/" + quote(rev.msgid, safe=URL_SAFE)),
               run_link=links.absolute(links.run_prefix + "series/" + quote(rev.msgid, safe=URL_SAFE)),
               previous=_previous_link(rev.obj, chain.run.tree.name))
    return render(request, "browse/series.html", ctx)


def _previous_link(rev: Revision | None, tree: str) -> dict | None:
    if rev is None or rev.previous_id is None:
        return None
    return {"old": rev.previous, "url": range_diff_url(rev.previous, rev, tree)}


def _stat(text: str) -> list[dict]:
    out = []
    for f, d in prov.file_sections(text):
        adds = sum(1 for c, _ in prov.diff_lines(d) if c == "add")
        dels = sum(1 for c, _ in prov.diff_lines(d) if c == "del")
        out.append({"path": f, "adds": adds, "dels": dels})
    return out


# ---------------------------------------------------------------- versions

def range_diff_url(old: Revision, new: Revision, tree: str | None = None) -> str:
    url = reverse("browse-range-diff", args=[f"{old.msgid}..{new.msgid}"])
    return url + ("?" + urlencode({"tree": tree}) if tree else "")


def _split_spec(spec: str) -> tuple[Revision, Revision]:
    """"OLD..NEW": a msgid may itself hold "..", so try every split."""
    start = 0
    while (i := spec.find("..", start)) != -1:
        old, new = revision_of_msgid(spec[:i]), revision_of_msgid(spec[i + 2:].rstrip("/"))
        if old is not None and new is not None:
            return old, new
        start = i + 1
    raise Http404(f"{spec!r} does not name two known revisions as OLD..NEW")


def _pick_tree(name: str | None, *revs: Revision) -> Tree | None:
    if name:
        tree = Tree.objects.filter(name=name).first()
        if tree is None:
            raise Http404(f"no tree named {name!r}")
        return tree
    for rev in revs:
        runs = prov.runs_containing(rev)
        if runs:
            return runs[0].tree
    trees = list(Tree.objects.all()[:2])
    return trees[0] if len(trees) == 1 else None


@anonymous_cached
def range_diff_view(request, spec):
    old, new = _split_spec(spec)
    tree = _pick_tree(request.GET.get("tree"), new, old)
    ctx = {"old": old, "new": new, "tree": tree, "trees": Tree.objects.order_by("name"),
           "old_url": series_url(old.msgid), "new_url": series_url(new.msgid)}
    if tree is None:
        ctx["error"] = "Choose the tree to apply both revisions onto."
        return render(request, "browse/range_diff.html", ctx, status=400)
    try:  # a page only reads: chains that do not exist are offered to maintainers (POST)
        result = prov.range_diff(old, new, tree, apply_if_missing=False)
    except prov.BrowseError as e:
        ctx.update(error=str(e), can_apply=is_maintainer(request.user),
                   unapplied=[r for r in (old, new) if not prov.runs_containing(r, tree)])
        return render(request, "browse/range_diff.html", ctx, status=404)
    for side in ("old", "new"):
        chain = result[f"{side}_chain"]
        ctx[f"{side}_chain"] = chain
        ctx[f"{side}_ref"] = result[side]
        ctx[f"{side}_own"] = Links(chain, False).series(result[side].msgid)
        ctx[f"{side}_deps"] = [r for r in chain.revisions if r.colour < result[side].colour]
    raw = params.flag(request.GET, "raw")
    text = result["raw"] if raw else result["text"]
    ctx.update(text=text, raw=raw, lines=_lines_html(prov.range_diff_lines(text)),
               permalink=settings.BASE_URL + range_diff_url(old, new, tree.name))
    return render(request, "browse/range_diff.html", ctx)


def range_diff_form(request):
    """GET ?old=&new=[&tree=] (msgids or lore URLs) -> the canonical range-diff URL."""
    ctx = {"trees": Tree.objects.order_by("name"), "form": request.GET}
    if request.GET.get("old") and request.GET.get("new"):
        try:
            old_id, new_id = lore.parse_ref(request.GET["old"]), lore.parse_ref(request.GET["new"])
        except ValueError as e:
            ctx["error"] = str(e)
            return render(request, "browse/range_diff_form.html", ctx, status=400)
        old, new = revision_of_msgid(old_id), revision_of_msgid(new_id)
        if old is None or new is None:
            ctx["error"] = f"unknown series: <{old_id if old is None else new_id}>"
            return render(request, "browse/range_diff_form.html", ctx, status=404)
        return redirect(range_diff_url(old, new, request.GET.get("tree") or None))
    return render(request, "browse/range_diff_form.html", ctx)


# ---------------------------------------------------------------- series page panel

def series_panel(request, revision) -> dict:
    """Context for templates/browse/_series_panel.html on the series page."""
    runs = prov.runs_containing(revision)
    chain = None
    if runs:
        try:
            chain = prov.load_chain(runs[0])
        except prov.BrowseError:
            chain = None
    tree = chain.run.tree.name if chain else _only_tree_name()
    panel = {"chain": chain, "tree": tree, "updates": [], "previous": _previous_link(revision, tree)}
    if chain is not None:
        links = Links(chain, by_head=False)
        panel.update(tree_url=links.prefix, changed_url=links.prefix + "?changed=1", diff_url=links.diff(),
                     own_url=links.series(revision.msgid),
                     deps=[r for r in chain.revisions if r.msgid != revision.msgid])
    panel["updates"] = [{"old": o, "new": n, "url": range_diff_url(o, n, tree)}
                        for o, n in prov.dependency_updates(revision, chain)]
    return {"browse_panel": panel}


def _only_tree_name() -> str | None:
    names = list(Tree.objects.values_list("name", flat=True)[:2])
    return names[0] if len(names) == 1 else None


def _views(prefix: str, name: str, key: str, conv: str):
    kw = f"<{conv}:{key}>"
    return [
        path(f"{prefix}{kw}/", tree_view, name=f"{name}tree"),
        path(f"{prefix}{kw}/diff", diff_view, name=f"{name}diff"),
        path(f"{prefix}{kw}/series/<path:msgid>", series_view, name=f"{name}series"),
        path(f"{prefix}{kw}/-/<path:path>", tree_view, name=f"{name}escaped-path"),
        path(f"{prefix}{kw}/<path:path>", tree_view, name=f"{name}path"),
    ]


urlpatterns = (_views("tree/", "browse-", "run_id", "int")
               + _views("tree/h/", "browse-head-", "sha", "str")
               + [path("range-diff/", range_diff_form, name="browse-range-diff-form"),
                  path("range-diff/<path:spec>", range_diff_view, name="browse-range-diff")])

