"""Content control: per-domain, group and user rules on headers, words and attachments.

Content rules are the customer's own policy, separate from spam: they run for
whitelisted senders too. Each matching rule yields a ``CONTENT_RULE`` hit whose
action maps from the rule's content action (SPEC 2.5) and which names the rule
and the recipients it applied to; "copy to administrator" adds a recipient
and "compress" zips the attachments it picks (``filters/compress.py``)
instead of changing the action. Attachment conditions also see the members
of attached archives (zip, tar, gzip, bzip2, xz), under the anti-virus limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import regex

from filters.archives import DEFAULT_LIMITS, ArchiveLimits, Unpacker, is_archive, label
from filters.lists import recipient_scopes
from filters.mail import Mail
from filters.policy import ContentAction, ContentRule, DomainPolicy, PolicyConfig, UserPolicy
from filters.verdict import Action, Hit, Stage

_ACTIONS = {
    ContentAction.DELETE: Action.DELETE,
    ContentAction.REDIRECT: Action.REDIRECT,
    ContentAction.TAG_HEADER: Action.TAG_HEADER,
    ContentAction.COPY: Action.DELIVER,
    ContentAction.COMPRESS: Action.DELIVER,
    ContentAction.LOG: Action.DELIVER,
}


class RegexTimeout(Exception):
    """A customer's regex ran past ``limits.regex_timeout`` on one header value."""


@lru_cache(maxsize=1024)
def _pattern(text: str) -> regex.Pattern[str]:
    return regex.compile(text, regex.IGNORECASE)


def _search(pattern: regex.Pattern[str], value: str, timeout: float) -> bool:
    """``pattern.search`` with a time limit: customer regexes come from config, untrusted."""
    try:
        return pattern.search(value, timeout=timeout) is not None
    except TimeoutError:
        raise RegexTimeout(pattern.pattern) from None


@lru_cache(maxsize=1024)
def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _File:
    """An attachment, or a member of an archive attached: what attachment conditions see."""

    where: str
    content_type: str
    filename: str | None
    size: int


def files_of(mail: Mail, limits: ArchiveLimits = DEFAULT_LIMITS) -> tuple[_File, ...]:
    """The attachments, then the members of the archives among them (zip, tar, gzip, ...).

    Members are unpacked under the same limits as for anti-virus; what the
    limits stop is not looked at here (anti-virus already reports it as
    ``Heuristics.Limits.Exceeded``). A member has no declared type: rules
    match it by extension.
    """
    direct = [_File(a.filename or a.content_type, a.content_type, a.filename, a.size)
              for a in mail.attachments]  # fmt: skip
    unpacker = Unpacker(limits)
    inside: list[_File] = []
    for index, a in enumerate(mail.attachments, 1):
        if not is_archive(a.data):
            continue
        walk = unpacker.walk(a.data, label(a.filename, f"#{index}"), a.filename)
        next(walk)  # the attachment itself, already in ``direct``
        inside += [_File(i.where, "", i.name, len(i.data)) for i in walk if i.data is not None]
    return (*direct, *inside)


def match(
    rule: ContentRule,
    mail: Mail,
    timeout: float = 0.25,
    files: Callable[[], Sequence[_File]] | None = None,
) -> str | None:
    """Why the rule matches the mail (every condition given holds), or None.

    ``files`` gives the attachments and archive members the attachment
    conditions look at (``files_of``, computed once per message by ``check``).
    Raises ``RegexTimeout`` when the rule's regex runs past ``timeout`` seconds.
    """
    found_files = files or (lambda: files_of(mail))
    reasons = []
    if rule.header is not None and rule.pattern is not None:
        pattern = _pattern(rule.pattern)
        if not any(_search(pattern, v, timeout) for v in mail.header_all(rule.header)):
            return None
        reasons.append(f"{rule.header} matches /{rule.pattern}/")
    if rule.words:
        found = _find_word(tuple(rule.words), mail)
        if found is None:
            return None
        reasons.append(f"word {found!r}")
    if rule.attachment_types:
        wanted = [t.lower() for t in rule.attachment_types]
        named = [f for f in found_files() if _type_matches(f.content_type, f.filename, wanted)]
        if not named:
            return None
        reasons.append(f"attachment {named[0].where}")
    if rule.attachment_min_size is not None:
        big = [f for f in found_files() if f.size > rule.attachment_min_size]
        if not big:
            return None
        reasons.append(f"attachment {big[0].where} of {big[0].size} bytes > "
                       f"{rule.attachment_min_size}")  # fmt: skip
    return ", ".join(reasons)


def chosen_attachments(rule: ContentRule, mail: Mail) -> tuple[int, ...]:
    """Positions of the attachments the rule's attachment conditions pick; all without any."""
    wanted = [t.lower() for t in rule.attachment_types]
    return tuple(
        index
        for index, a in enumerate(mail.attachments)
        if (not wanted or _type_matches(a.content_type, a.filename, wanted))
        and (rule.attachment_min_size is None or a.size > rule.attachment_min_size)
    )


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
) -> list[tuple[str, ContentRule, tuple[str, ...]]]:
    """Each rule that applies, its scope, and the recipients it applies to."""
    rules: dict[int, tuple[str, ContentRule, list[str]]] = {}
    for recipient in mail.recipients or ("",):
        for scope in recipient_scopes(config, domain, recipient):
            lists = scope.lists
            owned = lists.content_rules if isinstance(lists, UserPolicy | DomainPolicy) else []
            for rule in owned:
                _, _, recipients = rules.setdefault(id(rule), (scope.label, rule, []))
                if recipient and recipient not in recipients:
                    recipients.append(recipient)
    return [(scope, rule, tuple(rcpts)) for scope, rule, rcpts in rules.values()]


def check(mail: Mail, config: PolicyConfig, domain: DomainPolicy) -> tuple[Hit, ...]:
    """A ``CONTENT_RULE`` hit for every rule that applies to a recipient and matches.

    A redirect hit carries the address to redirect to, a copy hit the
    administrator to copy (``Hit.address``); every hit names its rule and the
    recipients it applied to, for reports by rule and by user. A rule whose
    regex runs out of time yields ``CONTENT_RULE_TIMEOUT``, which asks for
    nothing: the rule is reported as not evaluated rather than silently as
    not matching.
    """
    hits: list[Hit] = []
    limits = config.limits
    timeout = limits.regex_timeout
    archive = ArchiveLimits(limits.archive_depth, limits.archive_members, limits.archive_bytes)
    files = cache(lambda: files_of(mail, archive))
    for scope, rule, recipients in _rules_for(config, domain, mail):
        try:
            why = match(rule, mail, timeout, files)
        except RegexTimeout:
            reason = f"rule {rule.name!r} ({scope}): regex ran over {timeout:g} s; not evaluated"
            hits.append(
                Hit("CONTENT_RULE_TIMEOUT", Stage.CONTENT, reason, rule=rule.name,
                    recipients=recipients)
            )  # fmt: skip
            continue
        if why is None:
            continue
        admin = rule.admin or domain.admin
        reason = f"rule {rule.name!r} ({scope}): {why} -> {rule.action.value}"
        sends = rule.action in (ContentAction.REDIRECT, ContentAction.COPY)
        packs = chosen_attachments(rule, mail) if rule.action is ContentAction.COMPRESS else ()
        hits.append(
            Hit("CONTENT_RULE", Stage.CONTENT, reason, 0.0, _ACTIONS[rule.action],
                admin if sends else None, rule=rule.name, recipients=recipients,
                attachments=packs)
        )  # fmt: skip
    return tuple(hits)


def redirect_to(hits: tuple[Hit, ...]) -> str | None:
    """Where the first redirecting rule sends the message, or None."""
    return next((h.address for h in hits if h.action is Action.REDIRECT and h.address), None)


def to_compress(hits: tuple[Hit, ...]) -> tuple[int, ...]:
    """Attachment positions compressing rules picked, each once, in order."""
    return tuple(sorted({i for h in hits for i in h.attachments}))


def copy_to(hits: tuple[Hit, ...]) -> tuple[str, ...]:
    """Administrators who get a copy, each once, in rule order."""
    return tuple(
        dict.fromkeys(h.address for h in hits if h.address and h.action is not Action.REDIRECT)
    )
