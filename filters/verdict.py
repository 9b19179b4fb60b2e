"""Actions, hits and verdicts: the values every stage and the pipeline speak in.

An action's integer value is its severity (SPEC 2.6): comparing two actions
compares how severe they are, so the pipeline's "only if more severe" rule is
a plain ``>``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.IntEnum):
    """What happens to a message, in increasing severity (SPEC 2.6)."""

    DELIVER = 0
    TAG_HEADER = 1
    TAG_SUBJECT = 2
    REDIRECT = 3
    DELETE = 4
    QUARANTINE = 5

    @property
    def label(self) -> str:
        """The lower-case name used in config files, logs and metric labels."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Action:
        """Read an action from its config spelling (``tag_subject``, ``quarantine``...)."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(a.label for a in cls)
            raise ValueError(f"unknown action {text!r}; expected one of {choices}") from None


class Stage(enum.StrEnum):
    """The stage that produced a hit; also the metric label for it."""

    ANTIVIRUS = "antivirus"
    WHITELIST = "whitelist"
    BLACKLIST = "blacklist"
    SIGNATURES = "signatures"
    HEURISTICS = "heuristics"
    CONTENT = "content"
    PARSER = "parser"
    AUTHENTICATION = "authentication"


class Category(enum.StrEnum):
    """Why the final action was taken: decides which quarantine and which retention."""

    CLEAN = "clean"
    SPAM = "spam"
    VIRUS = "virus"
    CONTENT = "content"


@dataclass(frozen=True, slots=True)
class VirusFinding:
    """A virus the anti-virus stage found, with the flags its signature carries."""

    name: str
    where: str
    mass_mailer: bool = False
    never_release: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """One named finding: a stable UPPER_SNAKE symbol, its score and a human reason.

    ``action`` is what the hit asks for on its own; informational hits (a DNS
    timeout, a rule that only scores) ask for ``DELIVER``. ``address`` is where
    a redirect or copy goes (content control); ``virus`` is what anti-virus found.
    ``rule`` and ``recipients`` name the content rule and the recipients it
    applied to: the symbol stays ``CONTENT_RULE`` (metric labels stay bounded)
    while events and reports count by rule and by user. ``attachments`` are
    the positions (in ``Mail.attachments``) a compressing rule packs into a zip.
    """

    symbol: str
    stage: Stage
    reason: str
    score: float = 0.0
    action: Action = Action.DELIVER
    address: str | None = None
    virus: VirusFinding | None = None
    rule: str | None = None
    recipients: tuple[str, ...] = ()
    attachments: tuple[int, ...] = ()


def total_score(hits: tuple[Hit, ...] | list[Hit]) -> float:
    """What a stage's hits add to the message's score."""
    return sum(h.score for h in hits)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The pipeline's decision for one message: what to do, and every reason why.

    ``score`` is the heuristic spam score; ``redirect_to`` is set when the
    action is ``REDIRECT``; ``copy_to`` lists administrators who get a copy
    whatever the action (content control's "copy to administrator");
    ``skipped`` names the stages that did not run (the severity rule, a
    whitelist, or the time budget), so a verdict says what was not checked;
    ``headers`` are trace headers to add on delivery (Authentication-Results);
    ``rewritten`` is the message to deliver instead of the one received, when
    a content rule compressed its attachments.
    """

    action: Action
    category: Category
    hits: tuple[Hit, ...] = ()
    score: float = 0.0
    redirect_to: str | None = None
    copy_to: tuple[str, ...] = ()
    subject_tag: str | None = None
    viruses: tuple[VirusFinding, ...] = field(default=())
    skipped: tuple[Stage, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    rewritten: bytes | None = field(default=None, repr=False)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols of every hit, in the order they were found."""
        return tuple(h.symbol for h in self.hits)

    @property
    def is_virus(self) -> bool:
        return self.category is Category.VIRUS

    @property
    def never_release(self) -> bool:
        """True when any virus found may never leave the quarantine (SPEC 3)."""
        return any(v.never_release for v in self.viruses)

    def explain(self) -> str:
        """One line per hit, for ``mailmoat scan`` and logs."""
        lines = [f"{self.action.label} ({self.category}, score {self.score:.2f})"]
        lines += [
            f"  {h.symbol:<28} {h.score:+6.2f} {h.action.label:<12} {h.reason}" for h in self.hits
        ]
        if self.skipped:
            lines.append(f"  (not run: {', '.join(self.skipped)})")
        return "\n".join(lines)
