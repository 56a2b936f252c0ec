"""digest subscribe | list | preview | send --due (the CLI contract of issue 7)."""
from django.core.management.base import BaseCommand

from ...models import Subscription
from ...services import digests
from ._cli import add_json_flag, emit, fail


class Command(BaseCommand):
    help = "Manage digest subscriptions, preview the next digest, send what is due."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        s = sub.add_parser("subscribe", help="subscribe an address; prints the subscription id")
        s.add_argument("address")
        s.add_argument("--period", choices=digests.PERIODS, default=digests.WEEKLY)
        s.add_argument("--list", dest="lists", action="append", default=[], metavar="NAME")
        s.add_argument("--path", dest="paths", action="append", default=[], metavar="PREFIX")
        s.add_argument("--tree", dest="trees", action="append", default=[], metavar="NAME")
        s.add_argument("--watch", dest="watched", action="append", default=[], metavar="MSGID")
        s.add_argument("--name", default="", help="shown in the subject (default: the list)")
        p = sub.add_parser("preview", help="print the next digest as it would be sent now")
        p.add_argument("id", type=int)
        d = sub.add_parser("send", help="compose and send what is due")
        d.add_argument("--due", action="store_true", required=True)
        ls = sub.add_parser("list", help="list subscriptions")
        add_json_flag(s, p, d, ls)

    def handle(self, *args, **opts):
        getattr(self, "do_" + opts["action"])(opts)

    def do_subscribe(self, opts):
        try:
            sub = digests.subscribe(opts["address"], opts["period"], opts["lists"], opts["paths"],
                                    opts["trees"], opts["watched"], opts["name"])
        except ValueError as exc:
            raise fail(str(exc)) from exc
        emit(self, {"id": sub.pk, "address": sub.address, "period": sub.period}, opts["json"],
             str(sub.pk))

    def do_preview(self, opts):
        sub = Subscription.objects.filter(pk=opts["id"]).first()
        if sub is None:
            raise fail(f"no subscription {opts['id']}")
        text = digests.preview(sub)
        emit(self, text, opts["json"], f"Subject: {text['subject']}\n\n{text['body']}")

    def do_send(self, opts):
        results = digests.send_due()
        data = {"digests": [{"id": d.pk, "subscription": d.subscription_id, "to": d.subscription.address,
                             "subject": d.subject, "message_id": d.message_id, "state": d.state,
                             "result": result, "attempts": d.attempts, "error": d.error}
                            for d, result in results]}
        lines = [f"{d.state:8} {d.subscription.address} {d.subject} {d.message_id}"
                 + (f" ({d.error})" if d.error else "") for d, _ in results]
        emit(self, data, opts["json"], "\n".join(lines) or "nothing due")
        if any(d.state == digests.FAILED for d, _ in results):
            self.stderr.write("some digests failed for good; see their error")

    def do_list(self, opts):
        subs = Subscription.objects.order_by("pk")
        data = {"subscriptions": [{"id": s.pk, "address": s.address, "name": s.name, "period": s.period,
                                   "lists": s.lists, "paths": s.paths, "trees": s.trees,
                                   "watched": s.watched, "active": s.active} for s in subs]}
        lines = [f"{s.pk:4} {'active' if s.active else 'off':6} {s.period:6} {s.address}" for s in subs]
        emit(self, data, opts["json"], "\n".join(lines) or "no subscriptions")
