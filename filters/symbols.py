"""The symbol registry: every hit symbol, its stage, default score and description, in one table.

Stages name their hits from here and take default scores from here; the
policy's ``[scores]`` table overrides a score by symbol, and a symbol not in
this table is a configuration error. Metrics can bound their ``symbol`` label
by ``SYMBOLS``. A rule's score counts only without a token model (with one,
rules are model features); the other scores always count.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from filters.verdict import Stage


@dataclass(frozen=True, slots=True)
class Symbol:
    """A named finding: where it comes from, what it adds by default, what it means."""

    name: str
    stage: Stage
    score: float
    description: str


_TABLE = (
    Symbol("VIRUS_FOUND", Stage.ANTIVIRUS, 0.0, "known malware; quarantined"),
    Symbol("VIRUS_MASS_MAILER", Stage.ANTIVIRUS, 0.0, "mass-mailer malware; deleted"),
    Symbol("WHITELIST", Stage.WHITELIST, 0.0, "sender trusted by every recipient"),
    Symbol("BLACKLIST_PRIVATE", Stage.BLACKLIST, 10.0, "sender on a private blacklist"),
    Symbol("BLACKLIST_DNSBL", Stage.BLACKLIST, 5.0, "client IP on a DNS block list"),
    Symbol("BLACKLIST_URIBL", Stage.BLACKLIST, 5.0, "body domain on a DNS block list"),
    Symbol("DNSBL_TIMEOUT", Stage.BLACKLIST, 0.0, "a block list did not answer in time"),
    Symbol("DNSBL_ERROR", Stage.BLACKLIST, 0.0, "a block list answered with an error"),
    Symbol("SIGNATURE_EXACT", Stage.SIGNATURES, 10.0, "body is a known spam campaign"),
    Symbol("SIGNATURE_FUZZY", Stage.SIGNATURES, 10.0, "body is near a known spam campaign"),
    Symbol("GTUBE", Stage.HEURISTICS, 1000.0, "the GTUBE anti-spam test string"),
    Symbol("HEURISTIC_MODEL", Stage.HEURISTICS, 10.0, "token model (score is the model weight)"),
    Symbol("HEURISTIC_SPAM", Stage.HEURISTICS, 0.0, "heuristic score reached a threshold"),
    Symbol("BULK_MAIL", Stage.HEURISTICS, 0.0, "list or ESP mail: content alone only tags"),
    Symbol("MISSING_DATE", Stage.HEURISTICS, 1.0, "no Date header"),
    Symbol("MISSING_MESSAGE_ID", Stage.HEURISTICS, 1.0, "no Message-ID header"),
    Symbol("MISSING_FROM", Stage.HEURISTICS, 1.5, "no From header"),
    Symbol("FROM_NAME_OTHER_ADDRESS", Stage.HEURISTICS, 1.5, "From name shows another address"),
    Symbol("MESSAGE_ID_NO_AT", Stage.HEURISTICS, 1.0, "Message-ID without @"),
    Symbol("DATE_UNPARSABLE", Stage.HEURISTICS, 1.0, "Date unparsable or absurd"),
    Symbol("DATE_IN_FUTURE", Stage.HEURISTICS, 1.0, "Date after the newest Received"),
    Symbol("HTML_ONLY", Stage.HEURISTICS, 0.5, "HTML without a plain-text part"),
    Symbol("HTML_IMAGES_LITTLE_TEXT", Stage.HEURISTICS, 1.0, "many images, few words"),
    Symbol("MANY_URLS", Stage.HEURISTICS, 0.5, "20 or more URLs"),
    Symbol("URL_IP_HOST", Stage.HEURISTICS, 1.5, "URL with a raw IP host"),
    Symbol("SUBJECT_ALL_CAPS", Stage.HEURISTICS, 1.0, "subject mostly capitals"),
    Symbol("SUBJECT_BANGS", Stage.HEURISTICS, 1.0, "subject with !!! or $$$"),
    Symbol("ATTACHMENT_EXECUTABLE", Stage.HEURISTICS, 3.0, "executable attachment"),
    Symbol("ATTACHMENT_DOUBLE_EXT", Stage.HEURISTICS, 2.5, "executable behind a decoy extension"),
    Symbol("MIME_MALFORMED", Stage.HEURISTICS, 1.0, "MIME structure defects"),
    Symbol("EMPTY_BODY_ATTACHMENT", Stage.HEURISTICS, 1.0, "no text but attachments"),
    Symbol("DMARC_REJECT", Stage.AUTHENTICATION, 6.0, "DMARC fails and the domain says reject"),
    Symbol("DMARC_QUARANTINE", Stage.AUTHENTICATION, 3.0, "DMARC fails; domain says quarantine"),
    Symbol("SPF_FAIL", Stage.AUTHENTICATION, 1.0, "the sender's SPF record says fail"),
    Symbol("DKIM_TRUSTED", Stage.AUTHENTICATION, -5.0, "valid DKIM signature of a trusted domain"),
    Symbol("CONTENT_RULE", Stage.CONTENT, 0.0, "a customer content rule matched"),
    Symbol("CONTENT_RULE_TIMEOUT", Stage.CONTENT, 0.0, "a content rule's regex ran out of time"),
    Symbol("FILTER_TIME_BUDGET", Stage.PARSER, 0.0, "filtering ran out of time; stages skipped"),
)

SYMBOLS = MappingProxyType({s.name: s for s in _TABLE})
"""Every symbol a stage can produce, by name."""


def default_score(name: str) -> float:
    """The registry's score for ``name``; a name not registered is a programming error."""
    return SYMBOLS[name].score
