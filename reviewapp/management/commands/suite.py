from django.core.management.base import BaseCommand, CommandError

from ...models import Suite
from ...services import apply as apply_service, suites
from ._cli import emit, fail, msgid_of, revision_for, tree_named


class Command(BaseCommand):
    help = ("Boot-and-fault suites. `suite run MSGID_OR_URL --tree NAME` applies (or reuses) the "
            "chain, runs the suite in this process (or reuses the result for the same head) and "
            "prints {status, tests, log, duration_s}. Exit status 0 on pass, 1 on error (also "
            "when the chain does not apply), 2 on fail, timeout or crashed.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="apply a series' chain and run a suite on it")
        run.add_argument("ref", metavar="MSGID_OR_URL")
        run.add_argument("--tree", required=True, metavar="NAME")
        run.add_argument("--suite", default=suites.DEFAULT_NAME, metavar="NAME")
        run.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        msgid = msgid_of(opts["ref"])
        tree = tree_named(opts["tree"])
        suite = self._suite(opts["suite"])
        rev = revision_for(msgid)
        apply_run = apply_service.apply(rev, tree)
        if apply_run.status != apply_run.APPLIED:
            data = {"status": "error", "tests": [], "duration_s": 0.0,
                    "log": f"the chain did not apply onto {tree.name} (apply run {apply_run.id}, "
                           f"{apply_run.status}): {apply_run.error or apply_run.failed}"}
            emit(self, data, opts["json"], data["log"])
            raise fail(f"apply run {apply_run.id}: {apply_run.status}: {apply_run.error}")
        if not opts["json"]:
            self.stderr.write(f"applied: head {apply_run.head[:12]}; running {suite.name}...")
        run = suites.run(apply_run, suite)
        data = suites.result_dict(run)
        emit(self, data, opts["json"], self._text(run, data))
        if data["status"] != "pass":
            # The result is on stdout already; the exit status is for scripts.
            code = 1 if data["status"] == "error" else 2
            raise CommandError(f"suite run {run.id}: {data['status']}", returncode=code)

    def _suite(self, name: str) -> Suite:
        found = suites.builtin(name) or Suite.objects.filter(name=name).first()
        if found is None:
            known = ", ".join(Suite.objects.order_by("name").values_list("name", flat=True))
            raise fail(f"no suite named {name!r} (known: {known or suites.DEFAULT_NAME})")
        return found

    def _text(self, run, data) -> str:
        lines = [f"{data['status']} ({run.suite.name}, {data['duration_s']:.1f} s, suite run {run.id})"]
        lines += [f"  {t['result']:6} {t['name']}" + (f"  # {t['detail'].splitlines()[0]}"
                                                        if t["result"] != "ok" and t["detail"] else "")
                  for t in data["tests"]]
        return "\n".join(lines)
