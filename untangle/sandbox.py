"""The sandbox a suite's builds and boots run in: bubblewrap (or, only when allowed,
unshare), with resource limits, bounded output and a deadline that never blocks.
Used by untangle.suite (selftest builds, QEMU) and untangle.kbuild (the kernel build)."""
from __future__ import annotations

import os
import resource
import select
import signal
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

BUILD_LOG_LIMIT = 50_000  # the first compiler errors matter most: keep the head


class Limits:
    def __init__(self, cpu_s: float, memory_mb: int, fsize_mb: int = 256):
        self.cpu_s, self.memory_mb, self.fsize_mb = int(cpu_s) + 1, memory_mb, fsize_mb

    def apply(self) -> None:
        """preexec_fn: runs in the child, limits inherited by everything it starts."""
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_s, self.cpu_s))
        if self.memory_mb:
            size = self.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        size = self.fsize_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


WEAK_SANDBOX_SETTING = "REVIEWAPP_SUITE_ALLOW_WEAK_SANDBOX"


def sandbox_kind(bwrap: str = "bwrap", allow_weak: bool = False) -> str | None:
    """Which sandbox may be used here: "bwrap", "unshare" (only when allowed) or None."""
    return sandbox_choice(bwrap, allow_weak)[0]


@lru_cache(maxsize=8)
def sandbox_choice(bwrap: str = "bwrap", allow_weak: bool = False) -> tuple[str | None, str]:
    """(kind, reason it is not bwrap). Fails closed: a broken bubblewrap means no run,
    because the fallback would let a hostile build read host files into its log."""
    failure = _probe(sandbox_argv("bwrap", ["true"], Path("/"), [], [], bwrap=bwrap))
    if failure is None:
        return "bwrap", ""
    reason = f"bubblewrap ({bwrap}) cannot run: {failure}"
    if not allow_weak:
        return None, (f"sandbox: {reason}; not building. Install bubblewrap, or set "
                      f"{WEAK_SANDBOX_SETTING}=true to accept unshare, which exposes host files")
    if _probe(["unshare", "-rn", "--", "true"]) is None:
        return "unshare", reason
    return None, f"sandbox: {reason}, and unshare -rn failed too; not building"


def _probe(argv: list[str]) -> str | None:
    """None when argv runs and exits 0, else why not."""
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    return f"exit status {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-300:]}"


def sandbox_argv(kind: str, argv: list[str], cwd: Path, ro: list[Path], rw: list[Path],
                  bwrap: str = "bwrap", maps=()) -> list[str]:
    if kind == "unshare":
        # Weaker: no network, but the filesystem is the host's. Only with the explicit
        # setting; recorded in the result.
        return ["unshare", "-rn", "--", *argv]
    mapped = [a for host, inside, flag in maps for a in (flag, str(host), str(inside))]
    return bwrap_args(bwrap, ro, rw) + mapped + ["--chdir", str(cwd), "--", *argv]


def bwrap_args(bwrap: str, ro: list[Path], rw: list[Path]) -> list[str]:
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/usr", "/usr"]
    # Only /usr and the few /etc files a toolchain reads: an #include of a host file
    # outside these (secrets, settings) must fail rather than land in the build log.
    for top in ("bin", "lib", "lib64", "sbin"):
        host = Path("/") / top
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for etc in ("/etc/ld.so.cache", "/etc/alternatives"):
        args += ["--ro-bind-try", etc, etc]
    binds = [(p, "--ro-bind") for p in ro] + [(p, "--bind") for p in rw]
    # Parents before children, so a nested bind is not hidden by its parent's.
    for path, flag in sorted(binds, key=lambda b: len(str(b[0]))):
        args += [flag, str(path), str(path)]
    return args


def run_sandboxed(argv, env, cwd: Path, ro, rw, timeout: float, limits: Limits, sandbox: str,
                   bwrap: str = "bwrap", on_output: Callable[[bytes], None] | None = None,
                   maps=(), cwd_host: Path | None = None):
    """Run argv in the sandbox; return (rc, output, timed_out). Output is bounded.
    ``maps``: (host, inside, flag) binds at other paths (bwrap only); ``cwd`` is then
    the path inside and ``cwd_host`` the host's."""
    full = sandbox_argv(sandbox, argv, cwd=cwd, ro=ro, rw=rw, bwrap=bwrap, maps=maps)
    proc = subprocess.Popen(full, cwd=cwd_host or cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=limits.apply, start_new_session=True)
    chunks, size, timed_out = [], 0, False
    deadline = time.monotonic() + timeout
    try:
        for chunk in read_until(proc, deadline):
            if on_output is not None:
                on_output(chunk)
            if size < BUILD_LOG_LIMIT:
                chunks.append(chunk)
            size += len(chunk)
        timed_out = proc.poll() is None
    finally:
        kill_group(proc)
    output = b"".join(chunks).decode(errors="replace")
    return proc.returncode, output, timed_out


def read_until(proc: subprocess.Popen, deadline: "float | Callable[[], float]"):
    """Yield stdout chunks until EOF or the deadline, never blocking past it.

    ``deadline`` may be a callable, read before every wait, so that a caller can bring
    it forward while reading (a rebinding of the caller's variable would not reach here).
    """
    fd = proc.stdout.fileno()
    current = deadline if callable(deadline) else (lambda: deadline)
    while True:
        remaining = current() - time.monotonic()
        if remaining <= 0:
            return
        ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            proc.wait(timeout=max(current() - time.monotonic(), 0.1))
            return
        yield chunk


def kill_group(proc: subprocess.Popen) -> None:
    """Kill the whole session (the compiler's children, QEMU) and reap the leader."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()
