"""Envelope addresses checked once, at the SMTP edge, so what is stored can be delivered.

aiosmtpd hands addresses over as text decoded with ``surrogateescape``: bytes
that are not UTF-8 survive as lone surrogates, which no encoder will write
back out, so such an address is refused at once (a 5xx the client
understands) instead of being accepted and failing at every delivery. The
null sender ``<>`` (bounces, DSNs) is normalised to the empty string, the
form the store and the outbound client both understand. Local parts with
``%``, ``!`` or a quoted ``@`` are old source-routing syntax: passed on
verbatim, they ask the customer's server to relay elsewhere, so they are
refused unless the operator allows them.
"""

from __future__ import annotations

BAD_SENDER = "553 5.1.7 Bad sender address syntax"
BAD_RECIPIENT = "553 5.1.3 Bad recipient address syntax"
UTF8_NOT_DECLARED = "553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter of MAIL FROM"
ROUTING_REFUSED = "550 5.7.1 Source-routed recipient (%, ! or quoted @) not accepted"


def _encodable(address: str) -> bool:
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the client sent bytes that are not UTF-8
        return False
    return True


def _well_formed(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and _encodable(address) and "\x00" not in address


def reverse_path(address: str) -> str | None:
    """The sender as stored: ``""`` for the null sender, None when it must be refused."""
    stripped = address.strip()
    if stripped in ("", "<>"):
        return ""
    return stripped if _well_formed(stripped) else None


def check_recipient(address: str, *, utf8: bool, allow_routing: bool) -> str | None:
    """The refusal for a recipient we could not deliver faithfully, or None when it is fine."""
    if not _well_formed(address):
        return BAD_RECIPIENT
    if not address.isascii() and not utf8:
        return UTF8_NOT_DECLARED
    local = address.rpartition("@")[0]
    if not allow_routing and ("%" in local or "!" in local or "@" in local):
        return ROUTING_REFUSED
    return None
