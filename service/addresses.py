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

import re

BAD_SENDER = "553 5.1.7 Bad sender address syntax"
BAD_RECIPIENT = "553 5.1.3 Bad recipient address syntax"
UTF8_NOT_DECLARED = "553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter of MAIL FROM"
ROUTING_REFUSED = "550 5.7.1 Source-routed recipient (%, ! or quoted @) not accepted"


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.S)


def split_plain_path(arg: str) -> tuple[str, str] | None:
    """``<local@domain> params`` split into the address and the rest, for plain addresses only.

    aiosmtpd parses every MAIL and RCPT argument with the email package's
    header parser, an eighth of the gateway's time under load; for a
    dot-atom address in angle brackets, the common case, the parser's answer
    is the text between the brackets, and this says so without it. None for
    anything else (quoted local parts, literals, comments): the parser decides.
    """
    found = _PLAIN_PATH.fullmatch(arg)
    if found is None:
        return None
    rest = found.group(2).lstrip(" \t")  # the parser skips the blanks after ">" ...
    if rest[:1] == "(" or rest[:1].isspace():  # ... and comments and folding: let it
        return None
    return found.group(1), rest


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
