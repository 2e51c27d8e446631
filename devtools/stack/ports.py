"""Who listens on which TCP port: Linux's /proc/net/tcp{,6} and the socket inodes under /proc/<pid>/fd."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import NamedTuple

from devtools.stack import HOST

LISTEN_STATE = "0A"  # the `st` column of /proc/net/tcp: TCP_LISTEN


class ListeningSocket(NamedTuple):
    """One row of /proc/net/tcp{,6} in the LISTEN state."""

    address: str
    port: int
    inode: int


class Listener(NamedTuple):
    """A listening socket and the process holding it (None when /proc does not let us see it)."""

    address: str
    port: int
    pid: int | None


def _decode_address(hex_address: str, family: socket.AddressFamily) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints the address as 32-bit words in host byte order (little-endian here): one word
    # for IPv4, four for IPv6, each to be reversed.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)


def parse_listening_sockets(table: str, family: socket.AddressFamily) -> list[ListeningSocket]:
    """The LISTEN rows of the text of /proc/net/tcp (AF_INET) or /proc/net/tcp6 (AF_INET6)."""
    found = []
    for line in table.splitlines()[1:]:  # the first line names the columns
        columns = line.split()
        if len(columns) < 10 or columns[3] != LISTEN_STATE:
            continue
        hex_address, hex_port = columns[1].split(":")
        found.append(
            ListeningSocket(_decode_address(hex_address, family), int(hex_port, 16), int(columns[9]))
        )
    return found


def listening_sockets() -> list[ListeningSocket]:
    """Every listening TCP socket of this network namespace, IPv4 and IPv6."""
    found = []
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            table = Path(path).read_text()
        except OSError:
            continue
        found.extend(parse_listening_sockets(table, family))
    return found


def parse_socket_inode(link_target: str) -> int | None:
    """The inode of a socket from the target of a /proc/<pid>/fd link ("socket:[12345]"), else None."""
    if link_target.startswith("socket:[") and link_target.endswith("]"):
        return int(link_target[len("socket:[") : -1])
    return None


def socket_owners() -> dict[int, int]:
    """Socket inode -> pid, for the processes we may inspect."""
    owners: dict[int, int] = {}
    for process in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (process / "fd").iterdir():
                inode = parse_socket_inode(os.readlink(fd))
                if inode is not None:
                    owners[inode] = int(process.name)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return owners


def listeners() -> list[Listener]:
    """Every listening TCP socket with the pid holding it."""
    owners = socket_owners()
    return [Listener(s.address, s.port, owners.get(s.inode)) for s in listening_sockets()]


def port_answers(port: int) -> bool:
    """Whether something accepts connections on HOST:port (covers what /proc does not show us)."""
    with socket.socket() as connection:
        connection.settimeout(0.3)
        return connection.connect_ex((HOST, port)) == 0


def describe_process(pid: int) -> str:
    """`pid N: its command line`, for messages naming who holds a port."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command_line = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    except OSError:
        command_line = "?"
    return f"pid {pid}: {command_line[:160]}"


def who_listens(port: int, table: list[Listener]) -> str | None:
    """Who holds port (every address it is bound on), or None when it is free."""
    holders = [listener for listener in table if listener.port == port]
    if not holders and not port_answers(port):
        return None
    if not holders:
        return "an unknown process"
    return "; ".join(
        f"{holder.address}:{port} by "
        + (describe_process(holder.pid) if holder.pid else "an unknown process")
        for holder in holders
    )
