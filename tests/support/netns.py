"""Test hosts in network namespaces of their own, where the machine allows it.

Each host gets a namespace and a veth pair (10.77.<n>.1 on this side, 10.77.<n>.2 inside);
PostgreSQL and Redis listen on 127.0.0.1 only, so a relay on this side's address forwards
their ports, and a host reaches them as a remote host reaches them by name: over the wire.
Without the right to make namespaces (not root, no CAP_NET_ADMIN) every host runs in this
namespace and `isolated` says so.
"""
from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass, field


@dataclass
class Host:
    name: str
    netns: str | None = None
    outside: str = "127.0.0.1"  # where this host reaches the shared services
    inside: str = "127.0.0.1"  # where others reach this host

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def url(self, url: str) -> str:
        """A service URL on 127.0.0.1, as this host must write it."""
        return url.replace("127.0.0.1", self.outside).replace("localhost", self.outside)


@dataclass
class Network:
    isolated: bool
    hosts: dict[str, Host] = field(default_factory=dict)
    _cleanup: list = field(default_factory=list)

    def close(self) -> None:
        for undo in reversed(self._cleanup):
            with contextlib.suppress(Exception):
                undo()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def make(names: list[str], ports: tuple[int, ...]) -> Network:
    tag = uuid.uuid4().hex[:5]
    try:
        _ip("netns", "add", f"rvw-{tag}-probe")
        _ip("netns", "del", f"rvw-{tag}-probe")
    except (OSError, subprocess.SubprocessError):
        return Network(False, {n: Host(n) for n in names})
    net = Network(True)
    for i, name in enumerate(names):
        ns, here, there = f"rvw-{tag}-{i}", f"vh{tag}{i}", f"vn{tag}{i}"
        base = f"10.77.{(int(tag, 16) + i) % 250 + 1}"
        _ip("netns", "add", ns)
        net._cleanup.append(lambda ns=ns: _ip("netns", "del", ns))
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        net._cleanup.append(lambda here=here: _ip("link", "del", here))
        _ip("link", "set", there, "netns", ns)
        _ip("addr", "add", f"{base}.1/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", ns, "addr", "add", f"{base}.2/30", "dev", there)
        _ip("-n", ns, "link", "set", there, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{base}.1")
        for port in ports:
            net._cleanup.append(_relay(f"{base}.1", port))
        net.hosts[name] = Host(name, ns, outside=f"{base}.1", inside=f"{base}.2")
    return net


def _relay(address: str, port: int):
    """Forward address:port to 127.0.0.1:port (the shared service), one thread a connection."""
    server = socket.create_server((address, port))
    stop = threading.Event()
    open_sockets: list[socket.socket] = []

    def pipe(a, b):
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for end in (a, b):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def serve():
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", port))
            open_sockets.extend((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()

    def close():  # the server and every relayed connection: no session outlives the test
        stop.set()
        server.close()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.close()
    return close
