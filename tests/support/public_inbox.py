"""A real public-inbox archive served over HTTP, for tests and demos.

Builds a public-inbox v2 inbox (index level "full", so `patchid:` and the
other searches work) in a temporary directory, imports mbox (mboxrd) files
and single-message files into it, and serves it with public-inbox-httpd on
127.0.0.1. Nothing is mocked: the code under test talks HTTP to the same
server software lore.kernel.org runs.

    with serve_inbox([Path("a.mbox"), Path("b.eml")], tmp_path) as inbox:
        inbox.url            # "http://127.0.0.1:PORT/all"
        inbox.add(Path("reply.eml"))   # or inbox.add_message(raw_bytes)
        inbox.stop()         # also done on leaving the block

start_inbox(...) is the same without the `with` (call .stop() yourself).

A session fixture serving all of ../shared/lore (one server for the whole
run, about 1-2 s to build and start) is defined below as `lore_inbox`; to
offer it to every test, put this line in tests/conftest.py:

    from tests.support.public_inbox import lore_inbox  # noqa: F401

It is equivalent to:

    @pytest.fixture(scope="session")
    def lore_inbox(tmp_path_factory):
        with serve_inbox(lore_mail_files(), tmp_path_factory.mktemp("lore")) as inbox:
            yield inbox

Tests that add mail or stop the server should build their own inbox
(serve_inbox(..., tmp_path)) so they don't disturb the shared one.

Manual demo: `.venv/bin/python -m tests.support.public_inbox --port 8080
FILE...` (or scripts/serve-inbox) serves until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

# Beside the repository: <repo>/../shared/lore (read-only real kernel mail).
from tests.support.shared import LORE as LORE_DIR, SHARED, require  # noqa: E402

_START_TIMEOUT = 30.0
_REQUIRED_TOOLS = ("public-inbox-init", "public-inbox-httpd", "perl", "git")

# Imports every message of the given files into the named inbox in one
# process (public-inbox-mda would start perl once per message and rewrite
# headers). A file whose first line is an mbox "From " line is read as
# mboxrd; any other file is one message. Prints each stored Message-ID so
# the caller can wait until the server shows them. v2 inboxes index while
# importing, so searches see the mail when this exits.
_IMPORT_PL = r"""
use strict; use v5.10.1;
use PublicInbox::Config; use PublicInbox::InboxWritable;
use PublicInbox::Eml; use PublicInbox::MboxReader;
my ($name, @files) = @ARGV;
my $ibx = PublicInbox::Config->new->lookup_name($name)
	or die "no inbox named $name in $ENV{PI_CONFIG}\n";
my $im = PublicInbox::InboxWritable->new($ibx)->importer(0);
# Tests force small epochs: V2Writable starts N+1.git once this many bytes went into N.git.
$im->{rotate_bytes} = $ENV{PI_TEST_ROTATE_BYTES} if $ENV{PI_TEST_ROTATE_BYTES};
my $add = sub {
	my ($eml) = @_;
	$im->add($eml);
	my $mid = $eml->header_raw('Message-ID') // '';
	$mid =~ s/\s+//g;
	print "$mid\n";
};
for my $f (@files) {
	open my $fh, '<', $f or die "open $f: $!\n";
	my $head = '';
	read($fh, $head, 5);
	seek($fh, 0, 0) or die "seek $f: $!\n";
	if ($head eq 'From ') {
		PublicInbox::MboxReader->mboxrd($fh, $add);
	} else {
		my $raw = do { local $/; <$fh> };
		$add->(PublicInbox::Eml->new(\$raw));
	}
}
$im->done;
"""


class PublicInboxError(RuntimeError):
    """Setting up or serving the inbox failed (message includes stderr)."""


@dataclass
class PublicInbox:
    """A running public-inbox-httpd serving one v2 inbox."""

    url: str  # http://127.0.0.1:PORT/<name>, no trailing slash
    name: str
    port: int
    root: Path  # holds inbox/, config, home/, logs
    rotate_bytes: Optional[int] = None  # small epochs: a new N.git after this many bytes
    _proc: Optional[subprocess.Popen] = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return _pi_env(self.root)

    def add(self, *paths: Path) -> list[str]:
        """Import more mail files; return their message-ids once served."""
        mids = _import(self.root, self.name, [Path(p) for p in paths], self.rotate_bytes)
        self._wait_visible(mids)
        return mids

    def add_message(self, raw: bytes) -> str:
        """Import one raw RFC 5322 message; return its message-id."""
        with tempfile.NamedTemporaryFile(
            dir=self.root, suffix=".eml", delete=False
        ) as fh:
            fh.write(raw)
        try:
            mids = self.add(Path(fh.name))
        finally:
            os.unlink(fh.name)
        return mids[0]

    def stop(self) -> None:
        """Stop the server (idempotent); its port refuses connections after."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill_group(proc)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _wait_visible(self, mids: list[str]) -> None:
        # httpd notices new mail on its own, but not always at once: wait so
        # tests never race the archive.
        deadline = time.monotonic() + _START_TIMEOUT
        for mid in mids:
            quoted = urllib.parse.quote(mid.strip("<>"), safe="@")
            while _http_status(f"{self.url}/{quoted}/raw") != 200:
                if time.monotonic() > deadline:
                    raise PublicInboxError(f"{mid} not served after import")
                time.sleep(0.05)


def lore_mail_files(lore_dir: Path = LORE_DIR) -> list[Path]:
    """The shared real mail: every *.mbox and transcribed/*.eml."""
    lore_dir = lore_dir.resolve()
    files = sorted(lore_dir.glob("*.mbox")) + sorted(lore_dir.glob("transcribed/*.eml"))
    if not files:
        raise PublicInboxError(f"no mail files in {lore_dir}")
    return files


def start_inbox(
    mail_paths: Iterable[Path],
    tmp: Path,
    name: str = "all",
    port: int = 0,
    rotate_bytes: Optional[int] = None,
    version: int = 2,
) -> PublicInbox:
    """Build an inbox in *tmp* from *mail_paths* and serve it; caller stops.

    version=1: a v1 inbox (one git repository, no git/N.git epochs), indexed
    with public-inbox-index so its search works: a server offering no epochs.

    rotate_bytes: public-inbox's epoch size (1 GiB by default); a small one
    makes the import roll over into 1.git, 2.git, ... as lore's big lists do."""
    _check_tools()
    root = Path(tmp) / f"pi-{name}"
    root.mkdir(parents=True, exist_ok=False)
    (root / "home").mkdir()
    sock = _listen(port)
    try:
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}/{name}"
        _init(root, name, url, version)
        files = [Path(p) for p in mail_paths]
        if files:
            _import(root, name, files, rotate_bytes)
        if version == 1:
            _run(root, ["public-inbox-index", str(root / "inbox")], "public-inbox-index")
        proc = _spawn_httpd(root, sock)
    finally:
        sock.close()  # the server holds its own copy now
    inbox = PublicInbox(url=url, name=name, port=port, root=root, rotate_bytes=rotate_bytes,
                        _proc=proc)
    try:
        _wait_up(inbox)
    except BaseException:
        inbox.stop()
        raise
    return inbox


@contextlib.contextmanager
def serve_inbox(
    mail_paths: Iterable[Path],
    tmp: Path,
    name: str = "all",
    port: int = 0,
    rotate_bytes: Optional[int] = None,
    version: int = 2,
) -> Iterator[PublicInbox]:
    """start_inbox() as a context manager: the server stops on exit."""
    inbox = start_inbox(mail_paths, tmp, name=name, port=port, rotate_bytes=rotate_bytes,
                        version=version)
    try:
        yield inbox
    finally:
        inbox.stop()


try:  # the fixture only where pytest is present (scripts/serve-inbox works without)
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def lore_inbox(tmp_path_factory) -> Iterator[PublicInbox]:
        """All shared lore mail served by one public-inbox-httpd per run."""
        tmp = tmp_path_factory.mktemp("lore-inbox")
        with serve_inbox(lore_mail_files(require(LORE_DIR)), tmp) as inbox:
            yield inbox


# --------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------


def _check_tools() -> None:
    missing = [t for t in _REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        raise PublicInboxError(
            f"missing {', '.join(missing)}: run scripts/install-system-deps"
        )


def _pi_env(root: Path) -> dict[str, str]:
    # A private HOME and PI_CONFIG: never touch the user's inboxes or config.
    env = dict(os.environ)
    env.update(
        HOME=str(root / "home"),
        PI_CONFIG=str(root / "config"),
        GIT_CONFIG_NOSYSTEM="1",
        LC_ALL="C.UTF-8",
    )
    return env


def _run(root: Path, argv: list[str], what: str, extra_env: Optional[dict] = None) -> str:
    res = subprocess.run(
        argv, cwd=root, env={**_pi_env(root), **(extra_env or {})}, capture_output=True,
        timeout=300,
    )
    if res.returncode != 0:
        raise PublicInboxError(
            f"{what} failed ({res.returncode}): {res.stderr.decode(errors='replace')}"
        )
    return res.stdout.decode(errors="replace")


def _init(root: Path, name: str, url: str, version: int = 2) -> None:
    # -j1: one Xapian shard; test inboxes are tiny and fewer shards start faster.
    shards = ["-j1"] if version == 2 else []
    argv = [
        "public-inbox-init", f"-V{version}", "-L", "full", *shards,
        name, str(root / "inbox"), url, f"{name}@example.invalid",
    ]
    _run(root, argv, "public-inbox-init")


def _import(root: Path, name: str, files: list[Path], rotate_bytes: Optional[int] = None) -> list[str]:
    for f in files:
        if not f.is_file() and f.resolve().is_relative_to(SHARED):
            require(f)  # the real mail beside the repo is absent: skip, naming it
        if not f.is_file():
            raise PublicInboxError(f"no such mail file: {f}")
    extra = {"PI_TEST_ROTATE_BYTES": str(rotate_bytes)} if rotate_bytes else None
    out = _run(root, ["perl", "-e", _IMPORT_PL, name, *map(str, files)], "import", extra)
    return [line for line in out.splitlines() if line.strip()]


def _listen(port: int) -> socket.socket:
    # We bind and listen ourselves and hand the socket over (systemd-style
    # LISTEN_FDS): no race for a "free" port between choosing and binding.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)  # what public-inbox wants for inherited sockets
    return sock


def _spawn_httpd(root: Path, sock: socket.socket) -> subprocess.Popen:
    # The socket arrives as stdin; the shell moves it to fd 3 and execs the
    # server so that LISTEN_PID ($$) is the server's own pid. -W0: no worker
    # processes, the master serves (fewer processes to start and stop).
    script = (
        'exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 '
        'exec public-inbox-httpd -W0 -1 "$1" -2 "$2"'
    )
    argv = ["sh", "-c", script, "sh", str(root / "httpd.out"), str(root / "httpd.err")]
    with open(root / "httpd.start.err", "wb") as err:
        return subprocess.Popen(
            argv,
            cwd=root,
            env=_pi_env(root),
            stdin=sock.fileno(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # own process group: stop() kills all of it
            preexec_fn=_die_with_parent,
        )


def _die_with_parent() -> None:
    # If the test run is killed before stop(), the server must not outlive
    # it (Linux: the kernel sends SIGTERM when the spawning thread exits;
    # so start inboxes from a thread that lives as long as they should).
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _http_status(url: str, timeout: float = 5.0) -> Optional[int]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as ex:
        return ex.code
    except (urllib.error.URLError, OSError):
        return None


def _wait_up(inbox: PublicInbox) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while _http_status(f"{inbox.url}/") != 200:
        proc = inbox._proc
        if proc is None or proc.poll() is not None or time.monotonic() > deadline:
            raise PublicInboxError(
                f"public-inbox-httpd did not come up on {inbox.url}: "
                + _read_logs(inbox.root)
            )
        time.sleep(0.05)


def _read_logs(root: Path) -> str:
    parts = []
    for name in ("httpd.start.err", "httpd.err"):
        path = root / name
        if path.exists():
            parts.append(path.read_text(errors="replace")[-2000:])
    return "\n".join(parts)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# --------------------------------------------------------------------------
# Manual demo
# --------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Serve mail files as a public-inbox.")
    ap.add_argument(
        "files", nargs="*", type=Path, help="mbox/eml files (default: shared lore mail)"
    )
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--name", default="all")
    args = ap.parse_args(argv)
    files = args.files or lore_mail_files()
    # Stop cleanly on Ctrl-C and on kill (TERM); a backgrounded shell job
    # starts with SIGINT ignored, so set both explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="serve-inbox-") as tmp:
        with serve_inbox(files, Path(tmp), name=args.name, port=args.port) as inbox:
            print(f"serving {len(files)} file(s) at {inbox.url}/", flush=True)
            try:
                while inbox.running:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
