"""A small authoritative DNS server on 127.0.0.1 (UDP, a free port) for tests,
built on dnspython's message parsing: the records are given as zone-file text per
name and type, e.g. ``{("remote.test", "MX"): ["10 mx1.remote.test."]}``.  Names
it does not know get NXDOMAIN; known names without the type get an empty answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Records = dict[tuple[str, str], list[str]]


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


def a_records(names: Iterable[str]) -> Records:
    return {(n, "A"): ["127.0.0.1"] for n in names}
