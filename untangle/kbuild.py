"""Build the tree's own kernel for a suite (``"kernel": {"source": "tree", ...}``).

Steps, run by untangle.suite inside its sandbox (no network, the tree read-only):

* kernel: ``tinyconfig`` + a config fragment (untangle/kconfig/<fragment>.config plus
  the suite's ``options``), ``olddefconfig``, then ``bzImage`` in an out-of-tree build
  directory with ccache. Under bubblewrap the tree, build dir and ccache are bound at
  fixed paths (/src, /kbuild, /ccache), so compile commands are byte-identical from
  run to run and a chain differing by one patch recompiles only the files it changed.
* headers: ``make headers_install`` into the build dir; the suite's build step then
  compiles the tree's selftests against them (``$HDR/include``).

A bounded cache (least recently used evicted) keeps the bzImage and .config per
(kernel_key, fragment); a re-run of the same head costs nothing.
"""
from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import time
from pathlib import Path

from untangle import sandbox

__all__ = ["KernelBuild", "validate", "fragment_text", "evict"]

KCONFIG_DIR = Path(__file__).resolve().parent / "kconfig"
_OPTION = re.compile(r"^CONFIG_[A-Z0-9_]+=(y|m|n|\d+|\"[^\"\n]*\")$")
_FRAGMENT = re.compile(r"^[a-z0-9-]{1,32}$")
_COMPILED = re.compile(rb"^\s+(CC|AS|AR|LD|HOSTCC|OBJCOPY)\s", re.M)
DEFAULT_EXPECTED = 700  # compile lines of a first tinyconfig+uffd build (measured: 6.1)
IMAGES_SHARE = 0.25  # of the cache bound; the rest is ccache's
FIXED = {"src": Path("/src"), "kbuild": Path("/kbuild"), "ccache": Path("/ccache")}


def validate(spec) -> list[str]:
    if spec is None:
        return []
    if not isinstance(spec, dict) or spec.get("source") not in ("fixed", "tree"):
        return ["kernel.source: \"fixed\" or \"tree\""]
    errors = []
    frag = spec.get("fragment", "uffd")
    if not isinstance(frag, str) or not _FRAGMENT.match(frag) or not (KCONFIG_DIR / f"{frag}.config").is_file():
        errors.append(f"kernel.fragment: one of {sorted(p.stem for p in KCONFIG_DIR.glob('*.config'))}")
    options = spec.get("options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) and _OPTION.match(o) for o in options):
        errors.append("kernel.options: list of CONFIG_NAME=value lines")
    if "kvm" in spec and not isinstance(spec["kvm"], bool):
        errors.append("kernel.kvm: true or false")
    for key in ("timeout_s", "memory_mb", "jobs"):
        if key in spec and not (isinstance(spec[key], int) and spec[key] > 0):
            errors.append(f"kernel.{key}: positive integer")
    return errors


def fragment_text(spec: dict) -> str:
    base = (KCONFIG_DIR / f"{spec.get('fragment', 'uffd')}.config").read_text()
    kvm = (KCONFIG_DIR / "kvm.config").read_text() if spec.get("kvm") else ""
    return base + kvm + "".join(f"{o}\n" for o in spec.get("options", []))


def wanted_options(fragment: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in fragment.splitlines() if _OPTION.match(line))


def _has_kvm(config: dict[str, str]) -> bool:
    return config.get("CONFIG_KVM") in ("y", "m")


def evict(images: Path, bound_bytes: int) -> list[str]:
    """Remove least recently used cached kernels until the images fit; their names."""
    entries = [p for p in images.iterdir() if p.is_dir()] if images.is_dir() else []
    size = {p: sum(f.stat().st_size for f in p.iterdir()) for p in entries}
    total, removed = sum(size.values()), []
    for entry in sorted(entries, key=lambda p: p.stat().st_mtime):
        if total <= bound_bytes:
            break
        shutil.rmtree(entry, ignore_errors=True)
        total -= size[entry]
        removed.append(entry.name)
    return removed


class KernelBuild:
    """One kernel build inside a suite run (``run`` is untangle.suite._Run)."""

    def __init__(self, run, spec: dict):
        self.run, self.spec = run, spec
        self.dir = run.scratch / "kbuild"
        self.hdr = self.dir / "usr"
        self.image = self.dir / "arch/x86/boot/bzImage"
        self.fragment = fragment_text(spec)
        cache = run.kernel_cache
        self.cache = cache
        key_src = f"{run.kernel_key or ''}\n{self.fragment}".encode()
        self.key = hashlib.sha256(key_src).hexdigest()[:24] if run.kernel_key else None
        self.fixed = run.sandbox == "bwrap"

    # ------------------------------------------------------------ paths inside the sandbox
    def _p(self, name: str) -> Path:
        real = {"src": self.run.tree, "kbuild": self.dir, "ccache": self._ccache()}[name]
        return FIXED[name] if self.fixed else real

    def _ccache(self) -> Path:
        path = (self.cache / "ccache") if self.cache else (self.run.scratch / "ccache")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _maps(self) -> list[tuple[Path, Path, str]]:
        if not self.fixed:
            return []
        return [(self.run.tree, FIXED["src"], "--ro-bind"), (self.dir, FIXED["kbuild"], "--bind"),
                (self._ccache(), FIXED["ccache"], "--bind")]

    def _env(self) -> dict:
        bound_mb = int(self.run.kernel_cache_mb * (1 - IMAGES_SHARE))
        return {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self._p("kbuild")),
                "CCACHE_DIR": str(self._p("ccache")), "CCACHE_MAXSIZE": f"{bound_mb}M",
                "CCACHE_NOHASHDIR": "1", "CCACHE_SLOPPINESS": "time_macros",
                # Fixed build identity: init/version.c and friends compile the same each run.
                "KBUILD_BUILD_TIMESTAMP": "2024-01-01", "KBUILD_BUILD_USER": "reviewapp",
                "KBUILD_BUILD_HOST": "sandbox", "KBUILD_BUILD_VERSION": "1"}

    def _make(self, *targets: str, quiet: bool = False) -> list[str]:
        jobs = int(self.spec.get("jobs", 2))
        argv = ["make", "-C", str(self._p("src")), f"O={self._p('kbuild')}", f"-j{jobs}",
                "CC=ccache gcc", "HOSTCC=ccache gcc"]
        return argv + (["-s"] if quiet else []) + list(targets)

    def _sh(self, argv: list[str], timeout: float, on_output=None) -> tuple[int, str, bool]:
        limits = sandbox.Limits(cpu_s=self.spec.get("timeout_s", 3600),
                           memory_mb=self.spec.get("memory_mb", 2048), fsize_mb=512)
        return sandbox.run_sandboxed(argv, self._env(), cwd=self._p("kbuild"), ro=[], rw=[],
                                timeout=timeout, limits=limits, sandbox=self.run.sandbox,
                                bwrap=self.run.bwrap, on_output=on_output, maps=self._maps(),
                                cwd_host=self.dir)

    # ------------------------------------------------------------ steps
    def compile(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._from_cache():
            self.run._add_build_log(f"kernel: cached build {self.key} reused\n")
            self.run.artifacts.kvm = _has_kvm(self._config())  # the boot and build need it
            self._keep_artifacts()
            return "pass"
        deadline = time.monotonic() + self.spec.get("timeout_s", 3600)
        (self.dir / "fragment.config").write_text(self.fragment)
        kb = self._p("kbuild")
        merge = [f"{self._p('src')}/scripts/kconfig/merge_config.sh", "-m", "-O", str(kb),
                 f"{kb}/.config", f"{kb}/fragment.config"]
        configure = ["sh", "-c", " && ".join([
            shlex.join(self._make("tinyconfig", quiet=True)), shlex.join(merge) + " >/dev/null",
            shlex.join(self._make("olddefconfig", quiet=True))])]
        self.run.progress("kernel", "configure")
        if not self._checked("configure", self._sh(configure, deadline - time.monotonic())):
            return "error"
        self._check_config()
        expected = self._expected()
        counter = {"n": 0, "shown": -1}

        def on_output(chunk: bytes) -> None:
            counter["n"] += len(_COMPILED.findall(chunk))
            pct = min(99, counter["n"] * 100 // max(expected, 1))
            if pct != counter["shown"]:
                counter["shown"] = pct
                self.run.progress("kernel", f"compile {pct}%")

        started = time.monotonic()
        result = self._sh(self._make("bzImage"), deadline - time.monotonic(), on_output)
        if not self._checked("compile", result):
            return "error"
        self.run.artifacts.compile_s = round(time.monotonic() - started, 3)
        self.run.artifacts.compiled_lines = counter["n"]
        if not self.image.is_file():
            self.run.problems.append("kernel: make bzImage produced no arch/x86/boot/bzImage")
            return "error"
        self._remember(counter["n"])
        self._keep_artifacts()
        return "pass"

    def _keep_artifacts(self) -> None:
        """bzImage and .config for download: copied out before the scratch dir goes."""
        dest = self.run.artifacts_dir
        if dest is None:
            return
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.image, dest / "bzImage")
        shutil.copy2(self.dir / ".config", dest / "config")

    def headers(self) -> str:
        argv = self._make("headers_install", f"INSTALL_HDR_PATH={self._p('kbuild')}/usr", quiet=True)
        ok = self._checked("headers", self._sh(argv, self.spec.get("timeout_s", 3600)))
        return "pass" if ok and (self.hdr / "include/linux/userfaultfd.h").is_file() else "error"

    def _checked(self, what: str, result: tuple[int, str, bool]) -> bool:
        rc, output, timed_out = result
        self.run._add_build_log(f"$ kernel {what}\n{output}")
        if timed_out:
            self.run.problems.append(f"kernel {what} timed out after {self.spec.get('timeout_s', 3600)} s")
            return False
        if rc != 0:
            first = next((ln for ln in output.splitlines() if "error" in ln.lower()), "")
            self.run.problems.append(f"kernel {what} failed (exit status {rc}) {first}".rstrip())
            return False
        return True

    def _config(self) -> dict[str, str]:
        config = (self.dir / ".config").read_text(errors="replace")
        return dict(line.split("=", 1) for line in config.splitlines() if line.startswith("CONFIG_"))

    def _check_config(self) -> None:
        have = self._config()
        missing = [k for k, v in wanted_options(self.fragment).items()
                   if v != "n" and have.get(k) != v]
        if missing:
            self.run.problems.append("kernel config: not set as asked (dependencies?): "
                                     + ", ".join(missing[:20]))
        self.run.artifacts.kvm = _has_kvm(have)

    # ------------------------------------------------------------ cache
    def _entry(self) -> Path | None:
        return self.cache / "images" / self.key if self.cache and self.key else None

    def _from_cache(self) -> bool:
        entry = self._entry()
        if entry is None or not (entry / "bzImage").is_file():
            return False
        self.image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(entry / "bzImage", self.image)
        shutil.copy2(entry / "config", self.dir / ".config")
        entry.touch()  # most recently used
        self.run.artifacts.cached = True
        return True

    def _expected(self) -> int:
        path = self.cache / "expected-lines" if self.cache else None
        try:
            return int(path.read_text()) if path else DEFAULT_EXPECTED
        except (OSError, ValueError):
            return DEFAULT_EXPECTED

    def _remember(self, lines: int) -> None:
        self.run.artifacts.cached = False
        if not self.cache:
            return
        if lines > 50:  # a full build, not a mostly up-to-date one
            (self.cache / "expected-lines").write_text(str(lines))
        entry = self._entry()
        if entry is None:
            return
        tmp = entry.with_name(entry.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy2(self.image, tmp / "bzImage")
        shutil.copy2(self.dir / ".config", tmp / "config")
        shutil.rmtree(entry, ignore_errors=True)
        tmp.rename(entry)
        bound = int(self.run.kernel_cache_mb * IMAGES_SHARE * 1024 * 1024)
        evicted = evict(entry.parent, bound)
        if evicted:
            self.run.artifacts.evicted = evicted
