"""Sender lists and their scopes: which user, group, domain and global lists apply.

Both the whitelist and the blacklist stage ask the same question, "which list
of which scope names this sender?", so the matching lives here once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from filters.policy import (
    ContentRule,
    DomainPolicy,
    GroupPolicy,
    Lists,
    PolicyConfig,
    UserPolicy,
)
from filters.verdict import Action


@dataclass(frozen=True, slots=True)
class Scope:
    """One set of lists and where it comes from (``user bob@x.test``, ``global``...)."""

    label: str
    lists: Lists


def domain_of(address: str) -> str:
    """The lower-cased domain part of an address, '' when there is none."""
    return address.rpartition("@")[2].lower() if "@" in address else ""


def match_entry(sender: str, entries: Sequence[str]) -> str | None:
    """The first entry naming the sender: an exact address, or its domain or a parent of it."""
    if not sender:
        return None
    domain = domain_of(sender)
    for entry in entries:
        if "@" in entry:
            if entry == sender:
                return entry
        elif domain == entry or domain.endswith("." + entry):
            return entry
    return None


def recipient_scopes(config: PolicyConfig, domain: DomainPolicy, recipient: str) -> Iterator[Scope]:
    """Lists that apply to one recipient, most specific first: user, groups, domain."""
    user = domain.users.get(recipient)
    if user is not None:
        yield Scope(f"user {recipient}", user)
    for name, group in domain.groups.items():
        if recipient in (m.lower() for m in group.members):
            yield Scope(f"group {name}", group)
    yield Scope(f"domain {domain_of(recipient) or 'default'}", domain)


def global_scope(config: PolicyConfig) -> Scope:
    return Scope("global", config)


@dataclass(frozen=True, slots=True)
class DomainLists:
    """What a customer set at run time (REST API) for one domain.

    Sender-list entries by scope; content rules, which apply at domain scope
    after the policy file's; and spam stage actions (``blacklist``, ``dnsbl``,
    ``signatures``) that replace the policy file's for the domain.
    """

    domain: Lists = field(default_factory=Lists)
    users: Mapping[str, Lists] = field(default_factory=dict)
    groups: Mapping[str, Lists] = field(default_factory=dict)
    content_rules: tuple[ContentRule, ...] = ()
    actions: Mapping[str, Action] = field(default_factory=dict)


def _joined(base: Lists, extra: Lists | None) -> dict[str, list[str]]:
    if extra is None:
        return {}
    return {
        "whitelist": [*base.whitelist, *extra.whitelist],
        "blacklist": [*base.blacklist, *extra.blacklist],
    }


def with_dynamic_lists(domain: DomainPolicy, extra: DomainLists | None) -> DomainPolicy:
    """The domain's policy with what the customer set at run time.

    Entries are added to the configured lists of each scope, content rules to
    the domain's, and stage actions replace the configured ones.

    Groups must exist in the policy file (membership lives there); entries for
    a group that no longer exists are ignored, like the group itself.
    """
    if extra is None:
        return domain
    users = dict(domain.users)
    for address, lists in extra.users.items():
        users[address] = users.get(address, UserPolicy()).model_copy(
            update=_joined(users.get(address, UserPolicy()), lists)
        )
    groups: dict[str, GroupPolicy] = {
        name: group.model_copy(update=_joined(group, extra.groups.get(name)))
        for name, group in domain.groups.items()
    }
    return domain.model_copy(
        update={
            **_joined(domain, extra.domain),
            "users": users,
            "groups": groups,
            "content_rules": [*domain.content_rules, *extra.content_rules],
            "actions": domain.actions.model_copy(update=dict(extra.actions)),
        }
    )
