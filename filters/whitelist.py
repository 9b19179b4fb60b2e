"""Whitelist stage: a sender the recipient trusts skips every other spam stage (SPEC 2.4).

A user's or group's whitelist only speaks for that mailbox, so a message to
several recipients is whitelisted only when every one of them trusts the
sender; a domain or global entry covers all recipients at once.
"""

from __future__ import annotations

from filters.lists import match_entry, recipient_scopes
from filters.mail import Mail
from filters.policy import DomainPolicy, PolicyConfig
from filters.verdict import Hit, Stage


def check(mail: Mail, config: PolicyConfig, domain: DomainPolicy) -> tuple[Hit, ...]:
    """A ``WHITELIST`` hit when the sender is trusted for every recipient, else ()."""
    sender = mail.sender
    entry = match_entry(sender, config.whitelist)
    if entry is not None:
        return (_hit(sender, entry, "global"),)
    recipients = mail.recipients or ("",)
    reasons: list[str] = []
    for recipient in recipients:
        for scope in recipient_scopes(config, domain, recipient):
            entry = match_entry(sender, scope.lists.whitelist)
            if entry is not None:
                reasons.append(f"{scope.label} ({entry})")
                break
        else:
            return ()
    return (_hit(sender, None, "; ".join(dict.fromkeys(reasons))),)


def _hit(sender: str, entry: str | None, where: str) -> Hit:
    detail = f"{where} ({entry})" if entry else where
    return Hit("WHITELIST", Stage.WHITELIST, f"sender {sender} whitelisted by {detail}")
