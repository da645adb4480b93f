"""The socket checker behind the loopback guarantee, on the kernel's real tables: a socket this process opens
is found with the right address and judged exposed or not."""

from __future__ import annotations

import os
import socket

from tutor_cluster.app import sockets


def _ours(sock: socket.socket) -> sockets.Socket:
    port = sock.getsockname()[1]
    found = [s for s in sockets.sockets_of({os.getpid()}) if s.local_port == port]
    assert len(found) == 1, found
    return found[0]


def test_listeners_on_loopback_pass_and_on_every_interface_fail() -> None:
    for family, host, exposed in ((socket.AF_INET, "127.0.0.1", False), (socket.AF_INET, "0.0.0.0", True),
                                  (socket.AF_INET6, "::1", False), (socket.AF_INET6, "::", True)):
        with socket.socket(family) as srv:
            srv.bind((host, 0))
            srv.listen()
            found = _ours(srv)
            assert found.listening and found.local == host and found.exposed() is exposed, found


def test_connections_are_judged_by_both_ends() -> None:
    with socket.socket() as srv, socket.socket() as cli:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        cli.connect(srv.getsockname())
        conn, _ = srv.accept()
        with conn:
            found = _ours(cli)
            assert found.state == "ESTABLISHED" and found.remote == "127.0.0.1" and not found.exposed()


def test_udp_bound_to_every_interface_is_exposed_and_an_unbound_one_is_not() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("0.0.0.0", 0))
        assert _ours(udp).exposed()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        assert not _ours(udp).exposed()


def test_addresses_as_the_kernel_reports_them() -> None:
    def sock(local: str, remote: str = "0.0.0.0", rport: int = 0, state: str = "LISTEN") -> sockets.Socket:
        return sockets.Socket("tcp6" if ":" in local else "tcp", local, 4000, remote, rport, state, 1, "x")

    assert not sock("::ffff:127.0.0.1").exposed() and sock("::ffff:192.0.2.2").exposed()
    assert sock("127.0.0.1", "192.0.2.9", 5000, "ESTABLISHED").exposed()


def test_descendants_of_this_process_include_a_child() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only waits to be found
        os.execvp("sleep", ["sleep", "30"])
    try:
        assert pid in sockets.descendants({os.getpid()})
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
