"""Who may receive released quarantine mail, so a release never reaches a third party (SPEC 3).

The rules: a release goes to the original recipients (every member when
there were several) or to other addresses in the customer's own domains;
never back to the envelope sender, never to anyone else. Infected mail also
needs an authorisation record, and some signatures are never released.

Each comparison errs towards refusing: the domain is always compared without
case, the local part with case when granting "original recipient" and without
case when refusing "sender". Customer domains match exactly (no subdomains).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Final

# RFC 5322 atext, plus UTF-8 beyond ASCII (RFC 6531); quoted local parts are refused.
_ATOM: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+")
_LABEL: Final = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
MAX_ADDRESS_CHARS: Final = 254


class ReleaseRefused(ValueError):
    """A release the rules forbid; ``reason`` is fit to show the customer."""

    def __init__(self, reason: str, *, address: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


def release_targets(
    *,
    requested: Sequence[str] | None,
    original_rcpts: Sequence[str],
    sender: str,
    customer_domains: Collection[str],
) -> tuple[str, ...]:
    """The normalised addresses to deliver a release to, or ``ReleaseRefused`` naming the culprit.

    With no request the release goes to every original recipient except the
    sender (a message a sender also addressed to themselves is not returned to
    them). A request naming the sender, a third party or a malformed address
    is refused as a whole.
    """
    never = _sender_key(sender)
    originals = [normalise_address(rcpt) for rcpt in original_rcpts]
    if not requested:
        targets = _unique(rcpt for rcpt in originals if rcpt.lower() != never)
        if not targets:
            raise ReleaseRefused("the message has no original recipient it may be released to")
        return targets
    domains = {_customer_domain(domain) for domain in customer_domains}
    allowed = set(originals)
    chosen: list[str] = []
    for address in requested:
        target = normalise_address(address)
        if never and target.lower() == never:
            raise ReleaseRefused(
                f"{target} sent this message; it is never released back to the sender",
                address=target,
            )
        if target not in allowed and target.rpartition("@")[2] not in domains:
            raise ReleaseRefused(
                f"{target} is neither an original recipient nor in your domains", address=target
            )
        chosen.append(target)
    return _unique(chosen)


def virus_release_allowed(*, never_release: bool, authorised: bool) -> None:
    """Nothing when infected mail may be released, else ``ReleaseRefused`` saying why (SPEC 3)."""
    if never_release:
        raise ReleaseRefused("this virus signature is on the never-release list")
    if not authorised:
        raise ReleaseRefused("releasing infected mail needs an authorisation record")


def normalise_address(address: str) -> str:
    """``local@domain`` with brackets and whitespace stripped and the domain lower-cased (A-labels).

    Raises ``ReleaseRefused`` for anything that is not a plain address: display
    names, quoted or empty local parts, domain literals, bad labels.
    """
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if not at or len(text) > MAX_ADDRESS_CHARS or not _valid_local(local):
        raise ReleaseRefused(f"{address!r} is not a valid address", address=address)
    ascii_domain = _ascii_domain(domain)
    if ascii_domain is None:
        raise ReleaseRefused(f"{address!r} is not a valid address", address=address)
    return f"{local}@{ascii_domain}"


def _ascii_domain(domain: str) -> str | None:
    """The lower-cased A-label form of a host name with at least two labels, else None."""
    try:
        ascii_domain = domain.removesuffix(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_domain


def _customer_domain(domain: str) -> str:
    """A configured customer domain, comparable; a bad one is a config bug, not a refusal."""
    ascii_domain = _ascii_domain(domain.strip())
    if ascii_domain is None:
        raise ValueError(f"customer domain {domain!r} is not a valid domain name")
    return ascii_domain


def _valid_local(local: str) -> bool:
    """A dot-atom local part; non-ASCII is welcome but not as spaces or invisible controls."""
    if len(local) > 64 or not local.isprintable() or any(char.isspace() for char in local):
        return False
    return all(_ATOM.fullmatch(atom) for atom in local.split("."))


def _sender_key(sender: str) -> str:
    """The sender as compared, or '' for the null sender and senders too broken to match anyone."""
    try:
        return normalise_address(sender).lower()
    except ReleaseRefused:
        return ""


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(addresses))
