"""DNS servers on 127.0.0.1 for tests: Debian's unbound (:class:`UnboundServer`,
installed by ops/test) where it is installed, else a small authoritative server (UDP,
a free port) built on dnspython's message parsing (:class:`DnsServer`).  Records are
given as zone-file text per name and type, e.g. ``{("remote.test", "MX"): ["10
mx1.remote.test."]}``, ``{("remote.test", "TXT"): ['"v=spf1 -all"']}`` (a long TXT
value as several quoted strings, see :func:`txt`); names not given get NXDOMAIN,
given names without the type an empty answer."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, cast

import dns.flags
import dns.exception
import dns.message
import dns.query
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Records = dict[tuple[str, str], list[str]]


class Dns(Protocol):
    """What the tests use of either server."""

    port: int

    def set(self, records: Records) -> None: ...

    async def start(self) -> int: ...

    def close(self) -> None: ...


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        assert self.transport is not None
        self.transport.sendto(self.server.answer(query).to_wire(), addr)


class DnsServer:
    def __init__(self, records: Records) -> None:
        self.records: Records = {}
        self.set(records)
        self.queries: list[tuple[str, str]] = []
        self._transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def set(self, records: Records) -> None:
        for (name, rdtype), values in records.items():
            self.records[(name.lower().rstrip("."), rdtype.upper())] = list(values)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = str(question.name).lower().rstrip(".")
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            values = self.records.get((name, rdtype))
            if values:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, question.rdtype, values))
            elif not any(n == name for n, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0))
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        return self.port

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def txt(text: str) -> str:
    """A TXT record's zone-file value: ``text`` in quoted strings of at most 255
    octets (RFC 1035 section 3.3.14)."""
    return " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))


def a_records(names: Iterable[str]) -> Records:
    return {(n, "A"): ["127.0.0.1"] for n in names}


def _free_udp_and_tcp_port() -> int:
    """A loopback port free for both UDP and TCP at the time of asking."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


class UnboundServer:
    """Debian's ``unbound`` as the tests' DNS server: the records are ``local-data`` of a
    static ``test.`` zone (unknown names NXDOMAIN, known ones without the type NODATA);
    every other name is refused, so nothing leaves 127.0.0.1.  :meth:`set` rewrites the
    config and restarts unbound on the same port."""

    def __init__(self, records: Records, directory: Path, binary: str) -> None:
        self.records: Records = {}
        self.directory = directory
        self.binary = binary
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.records_text(records)

    def records_text(self, records: Records) -> None:
        for (name, rdtype), values in records.items():
            self.records[(name.lower().rstrip("."), rdtype.upper())] = list(values)

    def _config(self) -> str:
        lines = [
            "server:", "  interface: 127.0.0.1", f"  port: {self.port}",
            "  do-daemonize: no", '  username: ""', '  chroot: ""',
            f'  directory: "{self.directory}"', '  pidfile: ""', "  use-syslog: no",
            f'  logfile: "{self.directory / "unbound.log"}"', "  do-ip6: no",
            "  do-tcp: yes", "  access-control: 127.0.0.0/8 allow",
            '  module-config: "iterator"', "  num-threads: 1",
            '  local-zone: "." refuse', '  local-zone: "test." static',
        ]
        for (name, rdtype), values in sorted(self.records.items()):
            for value in values:
                # TXT values carry their own double quotes ('"v=spf1 -all"'): such a
                # line is single-quoted (unbound.conf(5), local-data)
                q = "'" if '"' in value else '"'
                lines.append(f'  local-data: {q}{name}. 60 IN {rdtype} {value}{q}')
        lines += ["remote-control:", "  control-enable: no", ""]
        return "\n".join(lines)

    def _start(self) -> None:
        conf = self.directory / "unbound.conf"
        conf.write_text(self._config())
        self._process = subprocess.Popen([self.binary, "-d", "-c", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        probe = dns.message.make_query("probe.test.", "A")
        deadline = time.monotonic() + 20
        while True:         # until it answers (a positive signal), or it died
            if self._process.poll() is not None:
                err = self._process.stderr.read() if self._process.stderr else b""
                raise RuntimeError(f"unbound exited: {err.decode(errors='replace')}")
            try:
                dns.query.udp(probe, "127.0.0.1", port=self.port, timeout=0.2)
                return
            except (dns.exception.DNSException, OSError):  # a timeout, or no answer yet
                if time.monotonic() > deadline:
                    raise RuntimeError("unbound did not answer within 20 s") from None

    def _stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None

    def set(self, records: Records) -> None:
        self.records_text(records)
        self._stop()
        self._start()

    async def start(self) -> int:
        # unbound binds the port for UDP and TCP; another process (other tests on the
        # machine) may take it between our probe and unbound's bind: then try another
        for attempt in range(5):
            self.port = _free_udp_and_tcp_port()
            try:
                await asyncio.to_thread(self._start)
                return self.port
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._stop()


def dns_server(records: Records, directory: Path) -> Dns:
    """unbound where ops/test installed it, else the dnspython server above."""
    binary = shutil.which("unbound") or next(
        (p for p in ("/usr/sbin/unbound",) if Path(p).exists()), None)
    if binary is None:
        return DnsServer(records)
    return UnboundServer(records, directory, binary)
