"""Sender authentication as facts: SPF (pyspf), DKIM (dkimpy), DMARC (authheaders), one header.

Part of the enrich step: it asks DNS, so it runs before deciding and its
outcome is a plain ``AuthResults`` value in ``Facts``. Every lookup goes
through one injected TXT/A/MX function built on a dnspython resolver with the
policy's nameservers and timeout, so tests point it at the loopback DNS server
and nothing reaches the system resolver. The libraries are synchronous; the
async ``authenticate`` runs them in a thread.

SPF is checked for the envelope sender (the HELO name for the null sender);
DKIM for the first signature; DMARC for the From domain, aligned with those
two results. ``header`` is the RFC 8601 ``Authentication-Results`` value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import authheaders
import authres
import dkim
import dns.exception
import dns.resolver
import spf
from authres.dmarc import DMARCAuthenticationResult

from filters.facts import AuthResults
from filters.mail import Mail
from filters.policy import AuthConfig, DnsConfig

Lookup = Callable[[str, str], list[Any]]


def make_lookup(dns_config: DnsConfig) -> Lookup:
    """A DNS lookup in pyspf's shape: (name, qtype) -> answers; [] when there are none."""
    resolver = dns.resolver.Resolver(configure=not dns_config.nameservers)
    if dns_config.nameservers:
        resolver.nameservers = list(dns_config.nameservers)
    resolver.port = dns_config.port
    resolver.lifetime = dns_config.timeout

    def lookup(name: str, qtype: str) -> list[Any]:
        try:
            answer = resolver.resolve(name, qtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout as exc:
            raise spf.TempError(f"DNS timeout for {name} {qtype}") from exc
        if answer.rrset is None:
            return []
        if qtype in ("A", "AAAA"):
            return [r.address for r in answer.rrset]
        if qtype == "MX":
            return [(r.preference, r.exchange.to_text(True)) for r in answer.rrset]
        if qtype == "PTR":
            return [r.target.to_text(True) for r in answer.rrset]
        return [list(r.strings) for r in answer.rrset]

    return lookup


class _SpfQuery(spf.query):  # type: ignore[misc]
    """pyspf's query asking DNS through ``lookup`` instead of the module-wide resolver."""

    def __init__(self, lookup: Lookup, *args: Any, **kwargs: Any) -> None:
        self._lookup = lookup
        super().__init__(*args, **kwargs)

    def dns(
        self, name: str, qtype: str, cnames: Any = None, ignore_void: bool = False
    ) -> list[Any]:
        key = (str(name).rstrip(".").lower(), qtype)
        if key not in self.cache:
            self.cache[key] = self._lookup(*key)
        result: list[Any] = self.cache[key]
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


def check_spf(lookup: Lookup, ip: str | None, mail_from: str, helo: str | None) -> str:
    """The SPF result word (pass, fail, softfail, neutral, none, temperror, permerror)."""
    if not ip:
        return "none"
    sender = mail_from or f"postmaster@{helo or ''}"
    try:
        result, _code, _why = _SpfQuery(lookup, ip, sender, helo or "", timeout=5).check()
    except (spf.TempError, dns.exception.DNSException):
        return "temperror"
    return str(result)


def check_dkim(raw: bytes, lookup: Lookup) -> tuple[str, str]:
    """(result, signing domain) of the first DKIM signature; ("none", "") when unsigned."""
    if b"dkim-signature:" not in raw[: raw.find(b"\n\n") + 1 or len(raw)].lower():
        return "none", ""

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        records = lookup(name.decode("ascii", "replace").rstrip("."), "TXT")
        return b"".join(records[0]) if records else None

    verifier = dkim.DKIM(raw)
    try:
        ok = verifier.verify(dnsfunc=txt)
    except dkim.DnsTimeoutError:
        return "temperror", ""
    except (dkim.DKIMException, spf.TempError):
        ok = False
    domain = verifier.signature_fields.get(b"d", b"").decode("ascii", "replace")
    return ("pass" if ok else "fail"), domain


def check_all(mail: Mail, config: AuthConfig, lookup: Lookup) -> AuthResults:
    """SPF, DKIM and DMARC for one message, and the Authentication-Results header."""
    envelope = mail.envelope
    mail_from = envelope.mail_from.strip("<>")
    spf_result = check_spf(lookup, envelope.client_ip, mail_from, envelope.helo)
    dkim_result, dkim_domain = check_dkim(mail.raw, lookup)
    prev = f"{config.authserv_id}; spf={spf_result} smtp.mailfrom={mail_from or 'postmaster'}"
    prev += f"; dkim={dkim_result}" + (f" header.d={dkim_domain}" if dkim_domain else "")

    def txt(name: bytes | str, timeout: float = 5) -> str | None:
        # authheaders' DMARC lookup wants text where dkimpy wants bytes.
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = lookup(text.rstrip("."), "TXT")
        return b"".join(records[0]).decode("utf-8", "replace") if records else None

    try:
        header = authheaders.authenticate_message(
            mail.raw, config.authserv_id, prev="Authentication-Results: " + prev, spf=False,
            dkim=False, dmarc=True, dnsfunc=txt,
        )  # fmt: skip
    except Exception:  # a header authheaders cannot parse is hostile input, not our failure
        header = f"Authentication-Results: {prev}; dmarc=permerror"
    value = header.partition(":")[2].strip()
    dmarc_result, policy = "none", ""
    for result in authres.all_features().parse(header).results:
        if isinstance(result, DMARCAuthenticationResult):
            dmarc_result, policy = str(result.result), str(result.policy or "")
    return AuthResults(
        spf=spf_result,
        dkim=dkim_result,
        dkim_domain=dkim_domain.lower(),
        dmarc=dmarc_result,
        dmarc_policy=policy.lower(),
        header=value,
    )


async def authenticate(mail: Mail, config: AuthConfig, lookup: Lookup) -> AuthResults:
    """``check_all`` in a thread: the libraries block on DNS."""
    return await asyncio.to_thread(check_all, mail, config, lookup)
