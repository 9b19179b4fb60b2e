"""Content control: per-domain, group and user rules on headers, words and attachments.

Content rules are the customer's own policy, separate from spam: they run for
whitelisted senders too. Each matching rule yields a ``CONTENT_RULE`` hit whose
action maps from the rule's content action (SPEC 2.5); "copy to administrator"
adds a recipient instead of changing the action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from filters.lists import recipient_scopes
from filters.mail import Mail
from filters.policy import ContentAction, ContentRule, DomainPolicy, PolicyConfig, UserPolicy
from filters.verdict import Action, Hit, Stage

_ACTIONS = {
    ContentAction.DELETE: Action.DELETE,
    ContentAction.REDIRECT: Action.REDIRECT,
    ContentAction.TAG_HEADER: Action.TAG_HEADER,
    ContentAction.COPY: Action.DELIVER,
    ContentAction.LOG: Action.DELIVER,
}


@dataclass(frozen=True, slots=True)
class ContentOutcome:
    """What content control found: its hits, where to redirect, who gets copies."""

    hits: tuple[Hit, ...] = ()
    redirect_to: str | None = None
    copy_to: tuple[str, ...] = ()

    @property
    def action(self) -> Action:
        return max((h.action for h in self.hits), default=Action.DELIVER)


@lru_cache(maxsize=1024)
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE)


@lru_cache(maxsize=1024)
def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def match(rule: ContentRule, mail: Mail) -> str | None:
    """Why the rule matches the mail (every condition given holds), or None."""
    reasons = []
    if rule.header is not None and rule.pattern is not None:
        pattern = _pattern(rule.pattern)
        if not any(pattern.search(v) for v in mail.header_all(rule.header)):
            return None
        reasons.append(f"{rule.header} matches /{rule.pattern}/")
    if rule.words:
        found = _find_word(tuple(rule.words), mail)
        if found is None:
            return None
        reasons.append(f"word {found!r}")
    if rule.attachment_types:
        wanted = [t.lower() for t in rule.attachment_types]
        named = [a for a in mail.attachments if _type_matches(a.content_type, a.filename, wanted)]
        if not named:
            return None
        reasons.append(f"attachment {named[0].filename or named[0].content_type}")
    if rule.attachment_min_size is not None:
        big = [a for a in mail.attachments if a.size > rule.attachment_min_size]
        if not big:
            return None
        reasons.append(f"attachment of {big[0].size} bytes > {rule.attachment_min_size}")
    return ", ".join(reasons)


def _find_word(words: tuple[str, ...], mail: Mail) -> str | None:
    """The first of ``words`` in the subject or text, as written there, or None.

    Most messages hold none of a rule's words. When the words and the message
    are ASCII, case-insensitive matching is plain lower-case comparison, so a
    substring test on the lower-cased text rules a message out before the regex
    (``\\b`` around an alternation, case-insensitive: no fast literal scan) runs.
    """
    subject = mail.subject
    plain = all(w.isascii() and "\n" not in w for w in words)
    if plain and subject.isascii() and mail.text.isascii():
        text, low_subject = mail.text_lower, subject.lower()
        if not any(w.lower() in text or w.lower() in low_subject for w in words):
            return None
    found = _words(words).search(subject + "\n" + mail.text)
    return None if found is None else found.group(0)


def _type_matches(content_type: str, filename: str | None, wanted: list[str]) -> bool:
    name = (filename or "").lower()
    return any(name.endswith(w) if w.startswith(".") else content_type == w for w in wanted)


def _rules_for(
    config: PolicyConfig, domain: DomainPolicy, mail: Mail
) -> list[tuple[str, ContentRule]]:
    rules: dict[int, tuple[str, ContentRule]] = {}
    for recipient in mail.recipients or ("",):
        for scope in recipient_scopes(config, domain, recipient):
            lists = scope.lists
            owned = lists.content_rules if isinstance(lists, UserPolicy | DomainPolicy) else []
            for rule in owned:
                rules.setdefault(id(rule), (scope.label, rule))
    return list(rules.values())


def check(mail: Mail, config: PolicyConfig, domain: DomainPolicy) -> ContentOutcome:
    """Every content rule that applies to a recipient and matches, as one outcome."""
    hits: list[Hit] = []
    redirect_to: str | None = None
    copies: list[str] = []
    for label, rule in _rules_for(config, domain, mail):
        why = match(rule, mail)
        if why is None:
            continue
        action = _ACTIONS[rule.action]
        admin = rule.admin or domain.admin
        reason = f"rule {rule.name!r} ({label}): {why} -> {rule.action.value}"
        if rule.action is ContentAction.REDIRECT:
            redirect_to = redirect_to or admin
        elif rule.action is ContentAction.COPY and admin is not None:
            copies.append(admin)
        hits.append(Hit("CONTENT_RULE", Stage.CONTENT, reason, 0.0, action))
    return ContentOutcome(tuple(hits), redirect_to, tuple(dict.fromkeys(copies)))
