"""What the kernel says about a running service's sockets (Linux ``/proc``): every TCP and UDP socket of a set
of processes, with its local and remote address, so a check can prove the local service is loopback only.

This reads the same tables as ``ss -tunap``; no extra tools, no root needed for our own processes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
               "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
               "0B": "CLOSING"}


@dataclass(frozen=True)
class Socket:
    proto: str   # tcp, tcp6, udp, udp6
    local: str   # address
    local_port: int
    remote: str
    remote_port: int
    state: str   # LISTEN, ESTABLISHED, ... (UDP: UNCONN or ESTABLISHED)
    pid: int
    process: str

    @property
    def listening(self) -> bool:
        return self.state == "LISTEN" or (self.proto.startswith("udp") and self.remote_port == 0)

    def exposed(self) -> bool:
        """True when the socket listens on, or talks over, anything but loopback."""
        if self.listening and self.local_port == 0:
            return False  # created, never bound: reachable by nobody
        if not is_loopback(self.local):
            return True
        return not self.listening and self.remote_port != 0 and not is_loopback(self.remote)

    def __str__(self) -> str:
        peer = "" if self.listening else f" -> {self.remote}:{self.remote_port}"
        return f"{self.proto} {self.state} {self.local}:{self.local_port}{peer} ({self.process}, pid {self.pid})"


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback; the wildcard (0.0.0.0, ::) is not loopback."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _decode(hex_addr: str) -> tuple[str, int]:
    addr, port = hex_addr.split(":")
    raw = bytes.fromhex(addr)
    # the kernel prints each 32-bit word in host byte order
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    packed = struct.pack(f">{len(words)}I", *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed), int(port, 16)


def _table(proto: str) -> dict[int, tuple[str, int, str, int, str]]:
    rows: dict[int, tuple[str, int, str, int, str]] = {}
    try:
        lines = (_PROC / "net" / proto).read_text().splitlines()[1:]
    except OSError:
        return rows
    for line in lines:
        f = line.split()
        local, lport = _decode(f[1])
        remote, rport = _decode(f[2])
        if proto.startswith("tcp"):
            state = _TCP_STATES.get(f[3], f[3])
        else:
            state = "ESTABLISHED" if rport else "UNCONN"
        rows[int(f[9])] = (local, lport, remote, rport, state)
    return rows


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = list((_PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _comm(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"


def sockets_of(pids: set[int]) -> list[Socket]:
    """Every TCP/UDP socket (IPv4 and IPv6) that one of ``pids`` holds open."""
    owners: dict[int, int] = {}
    for pid in pids:
        for inode in _socket_inodes(pid):
            owners.setdefault(inode, pid)
    found: list[Socket] = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for inode, (local, lport, remote, rport, state) in _table(proto).items():
            pid = owners.get(inode)
            if pid is not None:
                found.append(Socket(proto, local, lport, remote, rport, state, pid, _comm(pid)))
    return found


def _stat_fields(pid_dir: Path) -> list[str] | None:
    try:
        return (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
    except (OSError, IndexError):
        return None


def service_pids(session_id: int) -> set[int]:
    """The processes of a service started as a session leader: every process of its session, and every
    descendant of those (Ray starts job drivers in sessions of their own)."""
    members: set[int] = set()
    parent: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is None:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        if int(fields[3]) == session_id:
            members.add(pid)
    return members | descendants(members, parent)


def descendants(roots: set[int], parent: dict[int, int] | None = None) -> set[int]:
    """Every process below ``roots`` in the process tree (not the roots themselves)."""
    if parent is None:
        parent = {}
        for entry in _PROC.iterdir():
            fields = _stat_fields(entry) if entry.name.isdigit() else None
            if fields is not None:
                parent[int(entry.name)] = int(fields[1])
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child not in roots:
                found.add(child)
                todo.append(child)
    return found


def exposed_sockets(pids: set[int]) -> list[Socket]:
    """The sockets of ``pids`` that listen on, or are connected over, a non-loopback address."""
    return [s for s in sockets_of(pids) if s.exposed()]
