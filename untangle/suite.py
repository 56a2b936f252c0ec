"""Build a tree's fault selftests, boot them under QEMU and collect their TAP results.

Pipeline (each a step in the result): build -> pack -> boot.

* build: compile the suite's programs statically from the tree (or run a build
  command) inside a sandbox: no network, the tree read-only, writes only to a
  scratch dir, CPU/memory/file-size limits and a wall-clock timeout. The code comes
  from a mailing list, so it is treated as hostile.
* pack: busybox-static + the programs + a generated /init into a newc initramfs.
* boot: qemu-system-x86_64 (TCG, no network device) with a fixed distro kernel. The
  /init runs each program between markers carrying a per-run nonce, prints an end
  marker with the number of failed programs, and powers off. QEMU exits 0 even when
  the guest panics, so only the end marker proves the run finished.

``run_suite`` returns a ``SuiteResult``: status ("pass", "fail", "timeout",
"crashed", "error"), ``tests`` (``SuiteTest``), ``problems`` (sentences), ``log``,
``duration_s``, ``sandbox`` ("bwrap", "unshare" or None), ``steps`` (``SuiteStep``)
and ``artifacts`` (``SuiteArtifacts``: facts about the kernel a tree-kernel suite
built). ``to_json()`` gives the plain shape the app stores.

The suite definition is plain JSON-able data (stored in a JSONField, admin-editable);
``validate_suite`` lists what is wrong with one, ``DEFAULT_SUITE`` is "uffd-faults".
"""

from __future__ import annotations

import copy
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from untangle import kbuild, tap
from untangle.sandbox import (BUILD_LOG_LIMIT, Limits, kill_group, read_until, run_sandboxed, sandbox_argv,
                              sandbox_choice, sandbox_kind)
from untangle.tap import Result, TapTest

__all__ = ["DEFAULT_SUITE", "UFFD_KERNEL_SUITE", "BaseComparison", "LOG_LIMIT", "SuiteArtifacts",
           "SuiteResult", "SuiteStep", "SuiteTest", "compare_with_base", "legacy_tests", "run_suite",
           "sandbox_kind", "validate_suite"]


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class SuiteTest:
    """One test of a run: a program (its exit status) or one of its subtests
    ("program/subtest"). ``regression``/``blame``: the app's comparison with the base."""

    name: str
    result: Result
    detail: str = ""
    regression: bool = False
    blame: str = ""  # msgid of the last patch touching the suite's paths

    @classmethod
    def from_tap(cls, test: TapTest, prefix: str = "") -> "SuiteTest":
        return cls(name=prefix + test.name, result=test.result, detail=test.detail)

    def to_json(self) -> dict:
        data = {"name": self.name, "result": self.result, "detail": self.detail}
        if self.regression:  # stored rows carry these two keys only for regressions
            data.update(regression=True, blame=self.blame)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "SuiteTest":
        return cls(name=str(data.get("name", "")), result=data.get("result", ""),
                   detail=str(data.get("detail") or ""), regression=bool(data.get("regression")),
                   blame=str(data.get("blame") or ""))


@dataclass(frozen=True)
class SuiteStep:
    name: str  # kernel, headers, build, pack, boot
    status: str  # pass, error, skipped, or the boot's verdict
    duration_s: float = 0.0

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "duration_s": self.duration_s}


@dataclass
class SuiteArtifacts:
    """What a tree-kernel suite learnt about its kernel (filled in while it runs)."""

    kvm: bool | None = None  # the built kernel has KVM
    cached: bool | None = None  # reused from the kernel cache
    compile_s: float | None = None
    compiled_lines: int | None = None
    evicted: list[str] = field(default_factory=list)  # cache entries removed for room

    def to_json(self) -> dict:
        """Only the facts that were learnt, as the old dict held them."""
        data = {"kvm": self.kvm, "cached": self.cached, "compile_s": self.compile_s,
                "compiled_lines": self.compiled_lines, "evicted": self.evicted or None}
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class SuiteResult:
    status: str  # pass, fail, timeout, crashed, error
    tests: tuple[SuiteTest, ...] = ()
    problems: tuple[str, ...] = ()
    log: str = ""
    duration_s: float = 0.0
    sandbox: str | None = None
    steps: tuple[SuiteStep, ...] = ()
    artifacts: SuiteArtifacts = field(default_factory=SuiteArtifacts)

    @classmethod
    def error(cls, problem: str) -> "SuiteResult":
        """A run that never started (no scratch dir, a crash of the caller's own code)."""
        return cls(status="error", problems=(problem,))

    def with_problems(self, before: Iterable[str] = (), after: Iterable[str] = ()) -> "SuiteResult":
        return replace(self, problems=(*before, *self.problems, *after))

    def to_json(self) -> dict:
        return {"status": self.status, "tests": [t.to_json() for t in self.tests],
                "problems": list(self.problems), "log": self.log, "duration_s": self.duration_s,
                "sandbox": self.sandbox, "steps": [s.to_json() for s in self.steps],
                "artifacts": self.artifacts.to_json()}


@dataclass(frozen=True)
class BaseComparison:
    """Tests failing on the chain, split by how they did on the chain's base."""

    regressions: tuple[str, ...] = ()  # ok or skipped on the base
    pre_existing: tuple[str, ...] = ()  # failing there too

DEFAULT_SUITE: dict = {
    "name": "uffd-faults",
    # Patches touching these paths make the suite relevant to a series.
    "paths": ["tools/testing/selftests/mm/"],
    "steps": {
        "build": {
            # Either "programs" (compiled one by one with cflags) or "command" (a shell
            # command run with $SRC = tree, $OUT = output dir; it must leave the
            # executables named in run.programs in $OUT).
            "programs": [
                {"name": "uffd-faults", "sources": ["tools/testing/selftests/mm/uffd-faults.c"]},
            ],
            "cflags": ["-static", "-O2", "-pthread", "-Wall"],
            "include_dirs": [],
            "timeout_s": 120,
            "memory_mb": 2048,
        },
        "boot": {"timeout_s": 60, "memory_mb": 256, "cpus": 1, "append": "loglevel=5"},
        "run": {"programs": [{"name": "uffd-faults", "args": [], "timeout_s": 30}]},
    },
}

# The tree's own kernel and userfaultfd selftests (untangle/kbuild.py). 6.1-era trees have
# tools/testing/selftests/vm/userfaultfd (run once per memory type; shmem includes the
# minor-fault test); 6.4+ have mm/uffd-unit-tests (minor faults on shmem and hugetlb).
_UFFD_BUILD = r"""set -e
inc="-I$HDR/include"
mkdir -p "$OUT/bin"
skip() {  # a program that reports itself skipped (kselftest exit code 4) with a reason
  printf '#!/bin/sh\necho "# SKIP %s"\nexit 4\n' "$2" > "$OUT/$1"
}
mm="$SRC/tools/testing/selftests/mm"
if [ -f "$mm/uffd-unit-tests.c" ]; then
  # 6.4+: uffd-stress per memory type, uffd-unit-tests (minor faults on shmem and hugetlb).
  extra=""  # helpers the tree's mm/Makefile links into every test (thp_settings.c: 6.8+)
  [ -f "$mm/thp_settings.c" ] && extra="$mm/thp_settings.c"
  for prog in uffd-unit-tests uffd-stress; do
    gcc -static -O2 -pthread $inc -I"$mm" -o "$OUT/bin/$prog" \
        "$mm/$prog.c" "$mm/uffd-common.c" "$mm/vm_util.c" $extra -lm
  done
  printf '#!/bin/sh\nexec /tests/bin/uffd-unit-tests "$@"\n' > "$OUT/uffd-unit"
  for mem in anon shmem; do
    printf '#!/bin/sh\nexec /tests/bin/uffd-stress %s "$@"\n' "$mem" > "$OUT/uffd-$mem"
  done
else
  # 6.1-era trees: vm/userfaultfd, once per memory type (shmem includes minor faults).
  vm="$SRC/tools/testing/selftests/vm"
  gcc -static -O2 -pthread $inc -I"$vm" -o "$OUT/bin/userfaultfd" "$vm/userfaultfd.c" "$vm/vm_util.c"
  for mem in anon shmem; do
    printf '#!/bin/sh\nexec /tests/bin/userfaultfd %s "$@"\n' "$mem" > "$OUT/uffd-$mem"
  done
  skip uffd-unit "this tree has no tools/testing/selftests/mm/uffd-unit-tests.c (6.4 and later)"
fi
# guest_memfd (tools/testing/selftests/kvm): only when the built kernel has KVM (the suite's
# kernel asks for it: "kvm": true); QEMU then emulates AMD SVM under TCG (-cpu max).
kvm="$SRC/tools/testing/selftests/kvm"
if [ ! -f "$kvm/guest_memfd_test.c" ]; then
  skip kvm-guest-memfd "this tree has no tools/testing/selftests/kvm/guest_memfd_test.c"
elif [ "${KERNEL_KVM:-}" != 1 ]; then
  skip kvm-guest-memfd "the suite's kernel does not enable KVM (kernel.kvm is not true)"
else
  make -s -C "$kvm" OUTPUT="$OUT/bin/kvm" KHDR_INCLUDES="-isystem $HDR/include" LDFLAGS=-static \
       "$OUT/bin/kvm/guest_memfd_test"
  find "$OUT/bin/kvm" -type f ! -name guest_memfd_test -delete  # objects: not for the guest
  printf '#!/bin/sh\nexec /tests/bin/kvm/guest_memfd_test "$@"\n' > "$OUT/kvm-guest-memfd"
fi
chmod +x "$OUT"/uffd-* "$OUT/kvm-guest-memfd"
"""

UFFD_KERNEL_SUITE: dict = {
    "name": "uffd-kernel",
    "paths": ["mm/", "fs/userfaultfd.c", "include/linux/userfaultfd_k.h",
              "include/uapi/linux/userfaultfd.h", "virt/kvm/guest_memfd.c",
              "tools/testing/selftests/mm/", "tools/testing/selftests/vm/"],
    "kernel": {"source": "tree", "fragment": "uffd", "timeout_s": 3600, "jobs": 2},
    "steps": {
        "build": {"command": _UFFD_BUILD, "timeout_s": 600, "memory_mb": 2048},
        # hugepages: uffd-unit-tests' hugetlb cases need 2 x 32 MB of free huge pages.
        "boot": {"timeout_s": 900, "memory_mb": 512, "cpus": 1, "append": "loglevel=4 hugepages=40"},
        "run": {"programs": [{"name": "uffd-anon", "args": ["16", "16"], "timeout_s": 240},
                             {"name": "uffd-shmem", "args": ["16", "16"], "timeout_s": 240},
                             {"name": "uffd-unit", "timeout_s": 300},
                             {"name": "kvm-guest-memfd", "timeout_s": 60}]},
    },
}

# The same with KVM in the chain's kernel: tools/testing/selftests/kvm/guest_memfd_test runs
# in the guest (TCG emulating AMD SVM). Costs a bigger kernel build, so it is its own suite.
UFFD_KVM_KERNEL_SUITE: dict = {**UFFD_KERNEL_SUITE, "name": "uffd-kvm-kernel",
                               "kernel": {**UFFD_KERNEL_SUITE["kernel"], "kvm": True}}

LOG_LIMIT = 200_000  # characters of log kept in the result
BASE_APPEND = "console=ttyS0 panic=-1"  # panic=-1 + -no-reboot: a panic ends QEMU at once
KSFT_SKIP = 4  # kselftest's exit code for "skipped"
PACK_LIMIT_BYTES = 256 * 1024 * 1024  # the guest's RAM holds the initramfs
END_GRACE_S = 10  # after the end marker, the guest has this long to reset
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_KERNEL_TS = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")
_CRASH = re.compile(r"^(Kernel panic - not syncing|BUG: |Oops: |general protection fault|kernel BUG at)")
_WARN = re.compile(r"^WARNING: CPU: ")
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-~])")

Progress = Callable[[str, str], None]


# --------------------------------------------------------------------------- schema

def validate_suite(suite: dict) -> list[str]:
    """Return human-readable errors; an empty list means the suite can run."""
    errors: list[str] = []
    if not isinstance(suite, dict):
        return ["suite must be an object"]
    if not isinstance(suite.get("name"), str) or not suite["name"]:
        errors.append("name: required")
    steps = suite.get("steps")
    if not isinstance(steps, dict):
        return errors + ["steps: required object with build, boot, run"]
    build, boot, run = (steps.get(k) or {} for k in ("build", "boot", "run"))
    errors += _validate_build(build)
    errors += _validate_numbers("boot", boot, ("timeout_s", "memory_mb", "cpus"))
    if not isinstance(boot.get("append", ""), str):
        errors.append("boot.append: must be a string")
    errors += _validate_run(run, build)
    errors += kbuild.validate(suite.get("kernel"))
    return errors


def _validate_build(build: dict) -> list[str]:
    errors = _validate_numbers("build", build, ("timeout_s", "memory_mb"))
    programs, command = build.get("programs"), build.get("command")
    if bool(programs) == bool(command):
        return errors + ["build: give exactly one of programs or command"]
    if programs and not isinstance(programs, list):
        return errors + ["build.programs: a list"]
    if command and not isinstance(command, str):
        errors.append("build.command: must be a string")
    for i, prog in enumerate(programs or []):
        if not isinstance(prog, dict) or not _NAME.match(str(prog.get("name", ""))):
            errors.append(f"build.programs[{i}].name: letters, digits, ._+- only")
            continue
        sources = prog.get("sources")
        if not sources or not _str_list(sources) or not all(_safe_rel(s) for s in sources):
            errors.append(f"build.programs[{i}].sources: relative paths inside the tree")
        for key in ("cflags", "ldflags"):
            if not _str_list(prog.get(key, [])):
                errors.append(f"build.programs[{i}].{key}: list of strings")
    for key in ("cflags", "include_dirs"):
        if not _str_list(build.get(key, [])):
            errors.append(f"build.{key}: list of strings")
    if _str_list(build.get("include_dirs", [])) and not all(
            _safe_rel(d) for d in build.get("include_dirs", [])):
        errors.append("build.include_dirs: relative paths inside the tree")
    return errors


def _str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _validate_run(run: dict, build: dict) -> list[str]:
    programs = run.get("programs")
    if not programs or not isinstance(programs, list):
        return ["run.programs: at least one program"]
    built = {p.get("name") for p in build.get("programs") or [] if isinstance(p, dict)}
    errors = []
    for i, prog in enumerate(programs):
        if not isinstance(prog, (str, dict)):
            errors.append(f"run.programs[{i}]: a name or an object with name, args, timeout_s")
            continue
        prog = _run_entry(prog)
        if not _NAME.match(str(prog.get("name", ""))):
            errors.append(f"run.programs[{i}].name: letters, digits, ._+- only")
        elif built and prog["name"] not in built:
            errors.append(f"run.programs[{i}]: '{prog['name']}' is not built")
        if not _str_list(prog.get("args", [])):
            errors.append(f"run.programs[{i}].args: list of strings")
        errors += _validate_numbers(f"run.programs[{i}]", prog, ("timeout_s",))
    return errors


def _validate_numbers(where: str, data: dict, keys: tuple[str, ...]) -> list[str]:
    return [f"{where}.{k}: positive number" for k in keys
            if k in data and not (isinstance(data[k], (int, float)) and data[k] > 0)]


def _safe_rel(path: str) -> bool:
    return bool(path) and not path.startswith("/") and ".." not in Path(path).parts


def _run_entry(prog) -> dict:
    """run.programs accepts bare names as a shorthand."""
    return {"name": prog} if isinstance(prog, str) else dict(prog)


# --------------------------------------------------------------------------- entry point

def run_suite(tree_dir: Path, suite: dict, kernel: Path, work_dir: Path,
              progress: Progress | None = None, *, bwrap: str = "bwrap",
              allow_weak_sandbox: bool = False, kernel_cache: Path | None = None,
              kernel_key: str | None = None, kernel_cache_mb: int = 2048,
              artifacts_dir: Path | None = None) -> SuiteResult:
    """Build, pack and boot ``suite`` for the tree at ``tree_dir``; see module doc.

    The sandbox fails closed: without a working bubblewrap (``bwrap`` names it) nothing
    is built and the status is "error", unless ``allow_weak_sandbox`` (an explicit
    setting) permits ``unshare -rn``, which hides the network but not the host's files.
    """
    started = time.monotonic()
    run = _Run(Path(tree_dir).resolve(), suite, Path(kernel).resolve(),
               Path(work_dir).resolve(), progress or (lambda step, status: None))
    run.bwrap = bwrap
    run.sandbox, run.sandbox_problem = sandbox_choice(bwrap, allow_weak_sandbox)
    run.kernel_cache = Path(kernel_cache).resolve() if kernel_cache else None
    run.kernel_key, run.kernel_cache_mb = kernel_key, kernel_cache_mb
    run.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
    try:
        run.execute()
    finally:
        shutil.rmtree(run.scratch, ignore_errors=True)
    return run.result(time.monotonic() - started)


class _Run:
    def __init__(self, tree: Path, suite: dict, kernel: Path, work_dir: Path, progress: Progress):
        self.tree, self.suite, self.kernel, self.progress = tree, copy.deepcopy(suite), kernel, progress
        work_dir.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="suite-", dir=work_dir))
        self.status = "error"
        self.steps: list[SuiteStep] = []
        self.tests: list[SuiteTest] = []
        self.problems: list[str] = []
        self.build_log = ""
        self.serial = ""
        self.sandbox: str | None = None
        self.bwrap = "bwrap"
        self.sandbox_problem = ""
        self.kernel_cache: Path | None = None
        self.kernel_key: str | None = None
        self.kernel_cache_mb = 2048
        self.artifacts_dir: Path | None = None
        self.artifacts = SuiteArtifacts()
        self.step_names = ["build", "pack", "boot"]
        self.from_tree = False
        self.kbuild = None

    def execute(self) -> None:
        errors = validate_suite(self.suite)
        if errors:
            self.problems += [f"suite: {e}" for e in errors]
            return self._skip_rest("build")
        kernel_spec = self.suite.get("kernel") or {}
        self.from_tree = kernel_spec.get("source") == "tree"
        if self.from_tree:
            self.step_names = ["kernel", "headers", "build", "pack", "boot"]
        if not self.from_tree and not self.kernel.is_file():
            self.problems.append(f"kernel image not found: {self.kernel}")
            return self._skip_rest(self.step_names[0])
        if self.sandbox is None:
            self.problems.append(self.sandbox_problem)
            return self._skip_rest(self.step_names[0])
        nonce = secrets.token_hex(6)
        if self.from_tree:
            self.kbuild = kbuild.KernelBuild(self, kernel_spec)
            if not self._step("kernel", self.kbuild.compile):
                return self._skip_rest("headers")
            self.kernel = self.kbuild.image
            if not self._step("headers", self.kbuild.headers):
                return self._skip_rest("build")
        if not self._step("build", self._build):
            return self._skip_rest("pack")
        if not self._step("pack", lambda: self._pack(nonce)):
            return self._skip_rest("boot")
        self._step("boot", lambda: self._boot(nonce))

    def _step(self, name: str, func: Callable[[], str]) -> bool:
        """Run one step; ``func`` returns the step status. True when it passed."""
        self.progress(name, "running")
        started = time.monotonic()
        try:
            status = func()
        except (OSError, subprocess.SubprocessError) as exc:
            # A broken host (no cpio, no busybox, disk full) is an error of the run,
            # reported like a build failure rather than a crash of the caller.
            self.problems.append(f"{name}: {exc}")
            status = "error"
        self.steps.append(SuiteStep(name, status, round(time.monotonic() - started, 3)))
        self.progress(name, status)
        return status == "pass"

    def _skip_rest(self, first: str) -> None:
        names = self.step_names
        for name in names[names.index(first):]:
            self.steps.append(SuiteStep(name, "skipped", 0.0))

    # ----------------------------------------------------------------- build
    def _build(self) -> str:
        build = self.suite["steps"]["build"]
        self.out = self.scratch / "out"
        self.out.mkdir()
        commands = _build_commands(build, self.tree, self.out,
                                   hdr=self.kbuild.hdr if self.kbuild else None,
                                   kvm=bool(self.artifacts.kvm))
        limits = Limits(cpu_s=build.get("timeout_s", 120), memory_mb=build.get("memory_mb", 2048))
        deadline = time.monotonic() + build.get("timeout_s", 120)
        for argv, env in commands:
            remaining = deadline - time.monotonic()
            ro = [self.tree] + ([self.kbuild.hdr] if self.kbuild else [])
            rc, output, timed_out = run_sandboxed(
                argv, env, cwd=self.scratch, ro=ro, rw=[self.scratch],
                timeout=max(remaining, 1), limits=limits, sandbox=self.sandbox, bwrap=self.bwrap)
            self._add_build_log(f"$ {shlex.join(argv)}\n{output}")
            if timed_out:
                self.problems.append(f"build timed out after {build.get('timeout_s', 120)} s")
                return "error"
            if rc != 0:
                first_error = next((ln for ln in output.splitlines() if "error" in ln.lower()), "")
                self.problems.append(f"build failed (exit status {rc}) {first_error}".rstrip())
                return "error"
        missing = [p["name"] for p in self._run_programs() if not (self.out / p["name"]).is_file()]
        if missing:
            self.problems.append(f"build produced no executable for: {', '.join(missing)}")
            return "error"
        return "pass"

    def _add_build_log(self, text: str) -> None:
        room = BUILD_LOG_LIMIT - len(self.build_log)
        if room > 0:
            self.build_log += text if len(text) <= room else text[:room] + "\n[build log truncated]\n"

    def _run_programs(self) -> list[dict]:
        return [_run_entry(p) for p in self.suite["steps"]["run"]["programs"]]

    # ----------------------------------------------------------------- pack
    def _pack(self, nonce: str) -> str:
        root = self.scratch / "initramfs"
        for sub in ("bin", "tests", "dev", "proc", "sys", "tmp"):
            (root / sub).mkdir(parents=True)
        shutil.copy2(_busybox(), root / "bin" / "busybox")
        # Everything the build wrote goes in, not only the listed programs: a program may
        # be a wrapper that execs a helper binary (uffd-shmem -> /tests/bin/userfaultfd shmem).
        problem = _copy_outputs(self.out, root / "tests")
        if problem:
            self.problems.append(problem)
            return "error"
        init = root / "init"
        init.write_text(_init_script(self._run_programs(), nonce))
        init.chmod(0o755)
        self.initrd = self.scratch / "initrd.cpio"
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        with open(self.initrd, "wb") as out:
            proc = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                                  input="\n".join(files).encode(), stdout=out,
                                  stderr=subprocess.PIPE, timeout=60)
        if proc.returncode != 0:
            self.problems.append(f"cpio failed: {proc.stderr.decode(errors='replace')[-2000:]}")
            return "error"
        return "pass"

    # ----------------------------------------------------------------- boot
    def _boot(self, nonce: str) -> str:
        boot = self.suite["steps"]["boot"]
        # TCG's "max" CPU model emulates AMD SVM, which a KVM-enabled guest kernel needs.
        argv = _qemu_argv(self.kernel, self.initrd, boot, cpu="max" if self.artifacts.kvm else None)
        console = _Console(nonce)
        outcome = _run_qemu(argv, console, timeout=boot.get("timeout_s", 60), sandbox=self.sandbox,
                            ro=[self.kernel, self.initrd], bwrap=self.bwrap)
        self.serial = console.text()
        self.tests = console.results(self._run_programs())
        self.problems += console.problems
        self.status = _verdict(outcome, console, self.tests)
        if outcome == "timeout":
            self.problems.append(f"boot exceeded {boot.get('timeout_s', 60)} s; QEMU was killed")
        elif outcome == "no-exit":
            self.problems.append(f"the guest finished its tests but did not reset within "
                                 f"{END_GRACE_S} s; QEMU was killed")
        elif outcome.startswith("qemu-error"):
            self.problems.append(f"QEMU failed: {outcome}")
        return self.status

    def result(self, duration: float) -> SuiteResult:
        log = self.build_log
        if self.serial:
            log += "--- serial console ---\n" + self.serial
        if len(log) > LOG_LIMIT:
            log = "[log truncated]\n" + log[-LOG_LIMIT:]
        return SuiteResult(status=self.status, tests=tuple(self.tests), problems=tuple(self.problems),
                           log=log, duration_s=round(duration, 3), sandbox=self.sandbox,
                           steps=tuple(self.steps), artifacts=self.artifacts)


def _verdict(outcome: str, console: "_Console", tests: list[SuiteTest]) -> str:
    if outcome.startswith("qemu-error"):
        return "error"
    if console.crash_lines:
        return "crashed"  # a panic or Oops is the worst news, even if the run went on
    if outcome == "timeout" and console.end_rc is None:
        return "timeout"
    if console.end_rc is None:
        return "crashed"  # QEMU exited but /init never reached its end marker
    if console.end_rc != 0 or any(t.result == "not ok" for t in tests):
        return "fail"
    return "pass"


# --------------------------------------------------------------------------- build helpers

def _build_commands(build: dict, tree: Path, out: Path, hdr: Path | None = None,
                    kvm: bool = False) -> list[tuple[list[str], dict]]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(out.parent),
           "SRC": str(tree), "OUT": str(out)}
    if hdr is not None:
        env["HDR"] = str(hdr)  # the tree's own `make headers_install` output
    if kvm:
        env["KERNEL_KVM"] = "1"  # the built kernel has KVM: build the KVM selftests too
    if build.get("command"):
        return [(["sh", "-c", build["command"]], env)]
    includes = [f"-I{tree / d}" for d in build.get("include_dirs", [])]
    commands = []
    for prog in build["programs"]:
        sources = [str(tree / s) for s in prog["sources"]]
        argv = (["gcc", *build.get("cflags", []), *prog.get("cflags", []), *includes,
                 "-o", str(out / prog["name"]), *sources, *prog.get("ldflags", [])])
        commands.append((argv, env))
    return commands


# --------------------------------------------------------------------------- pack helpers

def _copy_outputs(out: Path, dest: Path, limit: int = PACK_LIMIT_BYTES) -> str | None:
    """Copy the build's regular files (not symlinks: they could point at host files)
    into the initramfs; a problem sentence when they exceed ``limit`` bytes."""
    files = [p for p in sorted(out.rglob("*")) if p.is_file() and not p.is_symlink()]
    total = sum(p.stat().st_size for p in files)
    if total > limit:
        return f"pack: the build wrote {total} bytes, more than the {limit} an initramfs may hold"
    for path in files:
        target = dest / path.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return None


def _busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("busybox-static is not installed (apt-get install busybox-static)")


def _init_script(programs: list[dict], nonce: str) -> str:
    """The guest's /init: one marked section per program, an end marker, power off."""
    lines = [
        "#!/bin/busybox sh",
        "# Generated by untangle.suite: runs the test programs, then powers off.",
        "/bin/busybox mount -t devtmpfs devtmpfs /dev",
        "exec </dev/console >/dev/console 2>&1",
        "/bin/busybox --install -s /bin",
        "export PATH=/bin",
        "mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t tmpfs tmpfs /tmp",
        "mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm",
        'echo "guest kernel: $(uname -r -v)"',  # which kernel ran the tests, for the reader
        f"echo REVIEWAPP-BEGIN {nonce}",
        "failed=0",
    ]
    for prog in programs:
        name, timeout = prog["name"], int(prog.get("timeout_s", 60))
        args = " ".join(shlex.quote(a) for a in prog.get("args", []))
        lines += [
            f"echo REVIEWAPP-PROG {nonce} {name}",
            # stdout stays the console (a tty: line-buffered), so output before a
            # kernel crash is not lost in a pipe buffer.
            f"(cd /tmp && exec timeout -s KILL {timeout} /tests/{name} {args} </dev/null)",
            "rc=$?",
            f"echo REVIEWAPP-RC {nonce} {name} rc=$rc",
            f'[ "$rc" -eq 0 ] || [ "$rc" -eq {KSFT_SKIP} ] || failed=$((failed + 1))',
        ]
    # reboot, not poweroff: a kernel without ACPI (tinyconfig) can only halt on poweroff,
    # and a halted guest keeps QEMU alive; a reset ends it at once under -no-reboot.
    lines += [f"echo REVIEWAPP-END {nonce} rc=$failed", "sync", "reboot -f", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- boot helpers

def _qemu_argv(kernel: Path, initrd: Path, boot: dict, cpu: str | None = None) -> list[str]:
    append = f"{BASE_APPEND} {boot.get('append', '')}".strip()
    return ["qemu-system-x86_64", "-accel", "tcg",  # KVM may exist but hang here: be explicit
            *(["-cpu", cpu] if cpu else []),
            "-m", str(int(boot.get("memory_mb", 256))), "-smp", str(int(boot.get("cpus", 1))),
            "-nographic", "-no-reboot", "-nic", "none",  # no network device at all
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", append]


def _run_qemu(argv: list[str], console: "_Console", timeout: float, sandbox: str, ro,
              bwrap: str = "bwrap", grace: float = END_GRACE_S) -> str:
    """Boot; feed the serial output to ``console``. Return "exited", "timeout" or "qemu-error ..."."""
    full = sandbox_argv(sandbox, argv, cwd=Path("/"), ro=ro, rw=[], bwrap=bwrap)
    try:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    except OSError as exc:
        return f"qemu-error: {exc}"
    deadline = [time.monotonic() + timeout]
    try:
        for chunk in read_until(proc, lambda: deadline[0]):
            console.feed(chunk)
            if console.end_rc is not None:
                # Finished: give the reboot a few seconds rather than the whole budget.
                deadline[0] = min(deadline[0], time.monotonic() + grace)
        if proc.poll() is None:
            return "no-exit" if console.end_rc is not None else "timeout"
    finally:
        kill_group(proc)
    if proc.returncode != 0 and not console.saw_output:
        return f"qemu-error: exit status {proc.returncode}: {console.text()[-2000:]}"
    return "exited"


class _Console:
    """Serial console reader: bounded tail, markers, crash lines, per-program sections."""

    def __init__(self, nonce: str):
        self.nonce = nonce
        self.tail = bytearray()
        self.partial = b""
        self.crash_lines: list[str] = []
        self.warnings: list[str] = []
        self.end_rc: int | None = None
        self.sections: dict[str, list[str]] = {}
        self.rcs: dict[str, int] = {}
        self.current: str | None = None
        self.section_size = 0  # characters kept for the current program's TAP
        self.saw_output = False
        self.problems: list[str] = []

    def feed(self, chunk: bytes) -> None:
        self.saw_output = True
        self.tail += chunk
        if len(self.tail) > LOG_LIMIT * 2:
            del self.tail[: len(self.tail) - LOG_LIMIT]
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        for raw in lines:
            self._line(raw.decode(errors="replace").rstrip("\r"))

    def _line(self, line: str) -> None:
        kernel = _KERNEL_TS.match(line)
        bare = line[kernel.end():] if kernel else line
        if _CRASH.match(bare):
            self.crash_lines.append(bare)
        elif kernel and _WARN.match(bare):
            self.warnings.append(bare)
        words = line.split()
        if len(words) >= 3 and words[1] == self.nonce:
            return self._marker(words)
        if self.current is not None and self.section_size < LOG_LIMIT:
            self.sections[self.current].append(line)
            self.section_size += len(line)

    def _marker(self, words: list[str]) -> None:
        kind, rest = words[0], words[2:]
        if kind == "REVIEWAPP-PROG":
            self.current = rest[0]
            self.sections[self.current] = []
            self.section_size = 0
        elif kind == "REVIEWAPP-RC" and len(rest) == 2 and rest[1].startswith("rc="):
            self.rcs[rest[0]] = _int(rest[1][3:])
            self.current = None
        elif kind == "REVIEWAPP-END" and rest[0].startswith("rc="):
            self.end_rc = _int(rest[0][3:])

    def text(self) -> str:
        """The serial log for people: no \\r, no terminal escapes from the firmware."""
        # Firmware writes "\r\r\n" and bare "\r" as well as the kernel's "\r\n".
        text = re.sub(r"\r+\n?", "\n", self.tail.decode(errors="replace"))
        return _ESCAPES.sub("", text)[-LOG_LIMIT:]

    def results(self, programs: list[dict]) -> list[SuiteTest]:
        """One parent result per program (from its exit status) + its TAP subtests."""
        tests: list[SuiteTest] = []
        for prog in programs:
            name = prog["name"]
            if name not in self.sections:
                tests.append(SuiteTest(name, "skip", "not run: the guest stopped before this program"))
                continue
            report = tap.parse("\n".join(self.sections[name]))
            subtests, problems = list(report.tests), report.problem_lines()
            if not subtests:
                subtests = legacy_tests(self.sections[name], self.rcs.get(name))
                if subtests or self.rcs.get(name) in (0, KSFT_SKIP):
                    # Pre-KTAP output understood, or the exit status says it all: not a problem.
                    problems = list(report.problems)
            tests.append(self._parent(name, subtests, report.bailed_out))
            tests += [SuiteTest.from_tap(t, prefix=f"{name}/") for t in subtests]
            self.problems += [f"{name}: {p}" for p in problems]
        self.problems += [f"kernel: {line}" for line in self.crash_lines[:5]]
        self.problems += [f"kernel warning: {line}" for line in self.warnings[:5]]
        return tests

    def _parent(self, name: str, subtests: list[TapTest], bailed_out: bool) -> SuiteTest:
        rc = self.rcs.get(name)
        if rc is None:
            detail = "did not finish: " + (self.crash_lines[0] if self.crash_lines
                                           else "the guest stopped or timed out while it ran")
            return SuiteTest(name, "not ok", detail)
        if rc == KSFT_SKIP:
            why = next((ln.strip()[7:] for ln in self.sections.get(name, [])
                        if ln.strip().upper().startswith("# SKIP ")), "")
            return SuiteTest(name, "skip", "exit status 4 (kselftest skip)" + (f": {why[:300]}" if why else ""))
        failed = [t.name for t in subtests if t.result == "not ok"]
        if rc == 0 and not failed and not bailed_out:
            return SuiteTest(name, "ok", "exit status 0")
        detail = f"exit status {rc}" + (" (killed: timeout?)" if rc == 137 else "")
        if failed:
            detail += "; failed: " + ", ".join(failed)
        return SuiteTest(name, "not ok", detail)


def compare_with_base(chain: Iterable[SuiteTest], base: Iterable[SuiteTest]) -> BaseComparison:
    """Tests failing on the chain, named in chain order."""
    base_result = {t.name: t.result for t in base}
    failing = [t.name for t in chain if t.result == "not ok"]
    return BaseComparison(regressions=tuple(n for n in failing if base_result.get(n) != "not ok"),
                          pre_existing=tuple(n for n in failing if base_result.get(n) == "not ok"))


_LEGACY = re.compile(r"^testing (?P<name>[^:]{1,80}):")
# 6.4+ mm/uffd-unit-tests: "Testing NAME on MEM... " then "done", "failed [reason: X]" or
# "skipped [reason: X]", on the same line or (after the test's own output) a later one.
_UNIT_START = re.compile(r"^Testing (?P<name>.{1,120}?)\.\.\. ?")
_UNIT_END = re.compile(r"(?P<verdict>done|failed|skipped)(?: \[reason: (?P<why>.*?)\]?)?\s*$")


def legacy_tests(lines: list[str], rc: int | None) -> list[TapTest]:
    """Subtests of selftests that print no KTAP: 6.1's vm/userfaultfd ("testing NAME:"
    lines, each passed when the next one starts; the last fails unless the program exited
    0 or 4, with an "ERROR: ..." line as the detail) and 6.4+'s uffd-unit-tests ("Testing
    NAME... done|failed [reason: ...]|skipped [reason: ...]")."""
    unit = _unit_tests(lines, rc)
    if unit:
        return unit
    tests: list[TapTest] = []
    for line in lines:
        line = line.strip()
        match = _LEGACY.match(line)
        if match:
            tests.append(TapTest(match["name"].strip(), "ok"))
        # stderr's "ERROR: ..." often lands on the "testing NAME: " line itself.
        if tests and "ERROR:" in line and not tests[-1].detail:
            tests[-1] = replace(tests[-1], detail=line[line.index("ERROR:"):][:300])
    if tests and rc not in (0, KSFT_SKIP):
        last = tests[-1]
        tests[-1] = replace(last, result="not ok",
                            detail=last.detail or f"program exited with status {rc} during it")
    return tests


_VERDICTS: dict[str, Result] = {"done": "ok", "failed": "not ok", "skipped": "skip"}


def _unit_tests(lines: list[str], rc: int | None) -> list[TapTest]:
    tests: list[TapTest] = []
    pending: TapTest | None = None  # started, no verdict yet (its result is not final)
    for line in lines:
        line = line.strip()
        start = _UNIT_START.match(line)
        if start:
            if pending is not None:  # a test that never said how it ended
                tests.append(replace(pending, result="not ok", detail="no verdict printed"))
            pending = TapTest(start["name"].strip(), "not ok")
            line = line[start.end():]
        end = _UNIT_END.search(line) if pending is not None else None
        if end:
            why = (end["why"] or "")[:300]
            tests.append(replace(pending, result=_VERDICTS[end["verdict"]], detail=why))
            pending = None
        elif pending is not None and "ERROR:" in line and not pending.detail:
            pending = replace(pending, detail=line[line.index("ERROR:"):][:300])
    if pending is not None:
        detail = pending.detail or f"program exited with status {rc} during it"
        tests.append(replace(pending, result="not ok", detail=detail))
    return tests


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
