"""Open-relay test of a mail server: the standard relay probes, and which of them it accepted.

A relay probe is an envelope that asks the server to pass mail to a domain
that is not its own, written in one of the ways that have fooled servers
over the years: a plain foreign recipient, the ``%`` hack, ``!`` bang paths,
quoted local parts, source routes ``@a:b@c``, an empty sender, an
unqualified recipient, IP-literal domains. The server *accepted* a probe
when it answered ``RCPT TO`` with 2xx; any such answer makes it an open relay
candidate (the Telstra terms define open relay and reserve the right to test
for it). A control probe to ``postmaster`` of the server's own domain shows
the server takes mail at all, else every refusal means little. The probes
are sent raw (aiosmtplib's ``execute_command``): a polite client would
rewrite the very addresses under test.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

import aiosmtplib

FOREIGN = "example.net"
"""Default foreign domain: reserved (RFC 2606), so an accepted probe relays to nobody."""
FOREIGN_IP = "192.0.2.1"
"""TEST-NET-1 (RFC 5737): a foreign host named by IP literal."""
USER = "relaytest"
DOMAIN = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
"""A DNS name: what goes into the probes must not smuggle SMTP syntax of its own."""


def check_domain(name: str) -> str:
    """``name`` if it is a plain domain name; ValueError naming it otherwise."""
    if not DOMAIN.fullmatch(name):
        raise ValueError(f"{name!r} is not a domain name")
    return name


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    mail_from: str
    rcpt_to: str
    why: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the server said to one probe; ``accepted`` is a 2xx to RCPT."""

    probe: str
    mail_from: str
    rcpt_to: str
    accepted: bool
    stage: str
    code: int | None
    reply: str


@dataclass(frozen=True, slots=True)
class RelayReport:
    target: str
    local_domain: str
    foreign_domain: str
    control: Outcome
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reachable(self) -> bool:
        """False when no session could be had: nothing was tested."""
        return self.control.stage != "session"

    @property
    def accepted(self) -> list[str]:
        return [o.probe for o in self.outcomes if o.accepted]

    @property
    def open_relay(self) -> bool:
        return bool(self.accepted)

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {
            "open_relay": self.open_relay,
            "accepted": self.accepted,
            "reachable": self.reachable,
        }


def relay_probes(local: str, foreign: str = FOREIGN, server_ip: str = "127.0.0.1") -> list[Probe]:
    """The standard probes for a server whose own domain is ``local``."""
    victim = f"{USER}@{foreign}"
    own = f"postmaster@{local}"
    rows = [
        ("foreign_recipient", victim, victim, "foreign sender to a foreign recipient"),
        ("local_sender", own, victim, "a sender of the server's own domain, foreign recipient"),
        ("empty_sender", "", victim, "null reverse-path (bounces), foreign recipient"),
        ("ip_literal_sender", f"{USER}@[{server_ip}]", victim, "sender at the server's address"),
        ("percent_hack", own, f"{USER}%{foreign}@{local}", "user%foreign@local"),
        ("percent_hack_ip_literal", own, f"{USER}%{foreign}@[{server_ip}]", "user%foreign@[ip]"),
        ("bang_path", own, f"{foreign}!{USER}@{local}", "UUCP foreign!user@local"),
        ("bang_path_unqualified", own, f"{foreign}!{USER}", "UUCP foreign!user"),
        ("quoted_local_part", own, f'"{victim}"', '"user@foreign" with no domain'),
        ("quoted_at_local", own, f'"{victim}"@{local}', '"user@foreign"@local'),
        ("quoted_percent", own, f'"{USER}%{foreign}"@{local}', '"user%foreign"@local'),
        ("source_route", own, f"@{local}:{victim}", "source route @local:user@foreign"),
        ("double_at", own, f"{victim}@{local}", "user@foreign@local"),
        ("unqualified_recipient", own, USER, "a bare local part, no domain"),
        ("ip_literal_domain", own, f"{USER}@[{FOREIGN_IP}]", "recipient at a foreign IP literal"),
        ("trailing_dot", own, f"{victim}.", "user@foreign. (absolute domain name)"),
    ]
    return [Probe(*row) for row in rows]


class _Session:
    """One SMTP session that is reopened when the server drops it between probes."""

    def __init__(self, host: str, port: int, helo: str, timeout: float) -> None:
        self.client = aiosmtplib.SMTP(
            hostname=host, port=port, timeout=timeout, local_hostname=helo, start_tls=False
        )

    async def ensure(self) -> None:
        if not self.client.is_connected:
            await self.client.connect()
            await self.client.ehlo()

    def peer_ip(self, fallback: str) -> str:
        """The address really connected to, for IP-literal probes (a name is no literal)."""
        transport = self.client.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return str(peer[0]) if peer else fallback

    async def close(self) -> None:
        if self.client.is_connected:
            try:
                await self.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()

    async def attempt(self, probe: Probe) -> Outcome:
        def outcome(stage: str, code: int | None, reply: str, accepted: bool = False) -> Outcome:
            return Outcome(probe.name, probe.mail_from, probe.rcpt_to, accepted, stage, code, reply)

        try:
            await self.ensure()
            said = await self.client.execute_command(b"MAIL", f"FROM:<{probe.mail_from}>".encode())
            if not 200 <= said.code < 300:
                await self.client.execute_command(b"RSET")
                return outcome("mail", said.code, said.message)
            said = await self.client.execute_command(b"RCPT", f"TO:<{probe.rcpt_to}>".encode())
            await self.client.execute_command(b"RSET")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if self.client.is_connected:
                self.client.close()
            return outcome("session", None, f"{type(exc).__name__}: {exc}")
        return outcome("rcpt", said.code, said.message, 200 <= said.code < 300)


async def run_relay_test(
    host: str,
    port: int,
    *,
    local_domain: str,
    foreign_domain: str = FOREIGN,
    helo: str = "relaytest.mailmoat.invalid",
    timeout: float = 30.0,
) -> RelayReport:
    """Send every probe to ``host:port`` in one session (reopened if dropped) and report.

    A server that cannot be reached for the control probe is not probed further.
    """
    check_domain(local_domain)
    check_domain(foreign_domain)
    started = time.perf_counter()
    session = _Session(host, port, helo, timeout)
    try:
        control = await session.attempt(
            Probe("control", f"{USER}@{foreign_domain}", f"postmaster@{local_domain}", "own domain")
        )
        outcomes = []
        if control.stage != "session":
            probes = relay_probes(local_domain, foreign_domain, session.peer_ip(host))
            outcomes = [await session.attempt(p) for p in probes]
    finally:
        await session.close()
    return RelayReport(
        target=f"{host}:{port}",
        local_domain=local_domain,
        foreign_domain=foreign_domain,
        control=control,
        outcomes=outcomes,
        seconds=time.perf_counter() - started,
    )
