"""A small authoritative DNS server on loopback, so block-list tests use real UDP and dnspython.

Names are configured per test: A answers with a TTL, TXT answers, names that answer with an
error rcode (SERVFAIL...), names that never answer (to force timeouts), names
that exist without A records; everything else is NXDOMAIN with the SOA of
``origin`` in the authority section, so resolvers can cache it (RFC 2308).
The server counts the queries it receives per name, so tests can prove caching.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections import Counter
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def _key(name: str | dns.name.Name) -> str:
    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.lower().rstrip(".")


class DnsServer:
    """A UDP DNS server on 127.0.0.1, an ephemeral port, answering from a background thread.

    ``hold`` makes the server keep its replies until that many queries are
    waiting, then send them all: lookups made one after another would time out,
    so it proves they are made together without measuring time.
    """

    def __init__(self, origin: str = "test", negative_ttl: int = 60) -> None:
        self.origin = _key(origin)
        self.negative_ttl = negative_ttl
        self.answers: dict[str, tuple[int, list[str]]] = {}
        self.texts: dict[str, list[str]] = {}
        self.rcodes: dict[str, dns.rcode.Rcode] = {}
        self.silent: set[str] = set()
        self.nodata: set[str] = set()
        self.hold = 1
        self._queries: Counter[str] = Counter()
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # how often the thread checks for stop
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    @property
    def port(self) -> int:
        port: int = self._sock.getsockname()[1]
        return port

    def add(self, name: str, *addresses: str, ttl: int = 300) -> None:
        """Answer ``name`` with these A records."""
        self.answers[_key(name)] = (ttl, list(addresses))

    def add_txt(self, name: str, *texts: str) -> None:
        """Answer ``name`` with these TXT records (SPF, DKIM keys, DMARC policies)."""
        self.texts[_key(name)] = list(texts)

    def queries(self, name: str | None = None) -> int:
        """Queries received for ``name``, or for every name."""
        with self._arrived:
            return self._queries[_key(name)] if name else self._queries.total()

    def wait_for_queries(self, name: str, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` queries for ``name`` arrived; False after ``timeout``."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self._queries[_key(name)] >= count, timeout)

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _serve(self) -> None:
        held: list[tuple[bytes, tuple[str, int]]] = []
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            reply = self._reply(wire)
            if reply is None:
                continue
            held.append((reply, peer))
            if len(held) >= self.hold:
                for data, address in held:
                    self._sock.sendto(data, address)
                held.clear()

    def _reply(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        name = _key(question.name)
        with self._arrived:
            self._queries[name] += 1
            self._arrived.notify_all()
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.rcodes:
            response.set_rcode(self.rcodes[name])
        elif name in self.answers or name in self.texts:
            ttl, addresses = self.answers.get(name, (300, []))
            if question.rdtype == dns.rdatatype.A and addresses:
                response.answer.append(
                    dns.rrset.from_text_list(name + ".", ttl, "IN", "A", addresses)
                )
            elif question.rdtype == dns.rdatatype.TXT and name in self.texts:
                # A TXT string holds at most 255 bytes; longer records are several strings.
                quoted = [
                    " ".join(f'"{t[i : i + 255]}"' for i in range(0, len(t), 255))
                    for t in self.texts[name]
                ]
                response.answer.append(
                    dns.rrset.from_text_list(name + ".", 300, "IN", "TXT", quoted)
                )
            else:
                self._add_soa(response)
        elif name in self.nodata:
            self._add_soa(response)
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
            self._add_soa(response)
        return response.to_wire()

    def _add_soa(self, response: dns.message.Message) -> None:
        soa = f"ns.{self.origin}. hostmaster.{self.origin}. 1 3600 600 86400 {self.negative_ttl}"
        response.authority.append(
            dns.rrset.from_text(self.origin + ".", self.negative_ttl, "IN", "SOA", soa)
        )


class MxDnsServer(DnsServer):
    """The shared loopback DNS server, plus MX answers (it only knows A records)."""

    def __init__(self) -> None:
        super().__init__(origin="test")
        self.mx: dict[str, list[str]] = {}

    def add_mx(self, name: str, *records: str) -> None:
        """Answer MX queries for ``name`` with records like ``"10 mx1.example.test."``."""
        self.mx[name.lower().rstrip(".")] = list(records)

    def _reply(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        if question.rdtype != dns.rdatatype.MX or name not in self.mx:
            return super()._reply(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.answer.append(dns.rrset.from_text_list(name + ".", 300, "IN", "MX", self.mx[name]))
        wire_reply: bytes = response.to_wire()
        return wire_reply


def main() -> None:
    """Serve NXDOMAIN for every name until SIGTERM: the benches' loopback resolver.

    A mail filter under load (rspamd in the end-to-end bench) then gets every
    DNS answer from loopback at once and never waits on the network.
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with DnsServer() as server:
        print(f"dns: UDP on 127.0.0.1:{server.port}", flush=True)
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
