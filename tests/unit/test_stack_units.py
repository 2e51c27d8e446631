"""Unit tests of the stack tool (devtools/stack): what it parses, and its launchers' command lines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.stack import HOST
from devtools.stack.components import COMPONENTS
from devtools.stack.install import _built_and_stamped, _write_stamp
from devtools.stack.ports import ListeningSocket, parse_listening_sockets, parse_socket_inode
from devtools.stack.processes import PidRecord, ProcessStat, parse_pid_record, parse_proc_stat
from tests.support import ROOT

# Rows as the kernel prints them (columns after the inode cut short): a listener on 127.0.0.1:4317, one
# on 0.0.0.0:22, and an established connection to 4317 that is no listener.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:10DD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41001 1 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41002 1 0
   2: 0100007F:9C40 0100007F:10DD 01 00000000:00000000 00:00000000 00000000     0        0 41003 1 0
"""

# ::1 port 8889, :: port 9090, ::ffff:127.0.0.1 port 16686 (IPv4-mapped), and a socket in TIME_WAIT.
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:22B9 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 52001 1 0
   1: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 52002 1 0
   2: 0000000000000000FFFF00000100007F:412E 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 52003 1 0
   3: 00000000000000000000000001000000:22B9 00000000000000000000000001000000:D431 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0
"""  # noqa: E501


def test_proc_net_tcp_listeners() -> None:
    assert parse_listening_sockets(PROC_NET_TCP, socket.AF_INET) == [
        ListeningSocket("127.0.0.1", 4317, 41001),
        ListeningSocket("0.0.0.0", 22, 41002),
    ]


def test_proc_net_tcp6_listeners() -> None:
    assert parse_listening_sockets(PROC_NET_TCP6, socket.AF_INET6) == [
        ListeningSocket("::1", 8889, 52001),
        ListeningSocket("::", 9090, 52002),
        ListeningSocket("::ffff:127.0.0.1", 16686, 52003),
    ]


def test_proc_net_tables_without_rows() -> None:
    header_only = PROC_NET_TCP.splitlines()[0] + "\n"
    assert parse_listening_sockets(header_only, socket.AF_INET) == []
    assert parse_listening_sockets("", socket.AF_INET6) == []


def test_this_machines_own_tables_parse() -> None:
    """The real /proc/net/tcp of the machine running the tests: a socket we listen on is found."""
    with socket.socket() as server:
        server.bind((HOST, 0))
        server.listen()
        port = server.getsockname()[1]
        rows = parse_listening_sockets(Path("/proc/net/tcp").read_text(), socket.AF_INET)
    assert any(row.address == HOST and row.port == port for row in rows)


@pytest.mark.parametrize(
    ("target", "inode"),
    [("socket:[41001]", 41001), ("pipe:[41001]", None), ("/dev/null", None), ("anon_inode:[eventfd]", None)],
)
def test_socket_inode_of_an_fd_link(target: str, inode: int | None) -> None:
    assert parse_socket_inode(target) == inode


def test_proc_stat_with_spaces_and_parentheses_in_the_command_name() -> None:
    # Fields after the name: state, then 18 more, then starttime (field 22 of proc(5)).
    after_name = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 98765 19 20"
    assert parse_proc_stat(f"4242 (otelcol (a) b) {after_name}\n") == ProcessStat("S", 98765)
    assert parse_proc_stat(f"4242 (x) Z{after_name[1:]}") == ProcessStat("Z", 98765)


def test_this_process_stat_parses() -> None:
    stat = parse_proc_stat(Path("/proc/self/stat").read_text())
    assert stat.state == "R"
    assert stat.start_ticks > 0


def test_pid_record_round_trip() -> None:
    record = PidRecord(pid=4242, start_ticks=98765, argv=["/usr/bin/prometheus", "--x"], started=1.5e9)
    assert parse_pid_record(record.to_json()) == record


def test_pid_record_written_without_a_start_time() -> None:
    text = json.dumps({"pid": 4242, "start_ticks": None, "argv": ["jaeger"], "started": 1700000000})
    assert parse_pid_record(text) == PidRecord(4242, None, ["jaeger"], 1700000000.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"pid": 42',  # cut short while written
        "[4242]",
        '{"argv": ["jaeger"]}',
        '{"pid": "4242"}',
        '{"pid": true}',
        '{"pid": 0}',
        '{"pid": -1}',
        '{"pid": 4242, "start_ticks": "98765"}',
    ],
)
def test_pid_record_rejects_what_is_not_one(text: str) -> None:
    assert parse_pid_record(text) is None


def test_build_stamp(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    assert not _built_and_stamped(binary, "go=go1.26")
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert not _built_and_stamped(binary, "go=go1.26")  # never stamped: an interrupted build
    _write_stamp(binary, "go=go1.26")
    assert _built_and_stamped(binary, "go=go1.26")
    assert not _built_and_stamped(binary, "go=go1.27")


def test_components_ports_are_distinct_and_health_on_loopback() -> None:
    ports = [port for component in COMPONENTS for port in component.ports]
    assert len(ports) == len(set(ports))
    for component in COMPONENTS:
        assert component.health
        for url in component.health:
            assert url.startswith(f"http://{HOST}:"), url
            assert int(url.split(":")[2].split("/")[0]) in component.ports, url


@pytest.mark.parametrize(
    ("launcher", "expected"),
    [
        ("scripts/stack", "{up,down,status,install,install-debian}"),
        ("collector/build", "usage: collector/build [--force]"),
    ],
)
def test_launchers_run_from_any_folder(launcher: str, expected: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / launcher), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout


def test_collector_build_rejects_unknown_arguments() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "collector" / "build"), "--frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "usage: collector/build [--force]" in done.stderr
