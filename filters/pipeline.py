"""The pipeline: one pure function from a message, its facts and a policy to a verdict.

The stage order and the severity rule (SPEC 2.4, 2.6) live in ``_spam`` and
nowhere else: a whitelist hit ends the spam checks; the blacklist always runs;
signatures and heuristics run only when the action they are configured to
take is more severe than the one already chosen, and then supersede it.
Anti-virus runs first on every message and, when it finds something, decides
alone. Content control is the customer's own policy and runs last, for
whitelisted senders too; the more severe of spam and content wins.
"""

from __future__ import annotations

from filters import antivirus, blacklist, content, heuristics, signatures, whitelist
from filters.antivirus import ArchiveLimits
from filters.budget import Deadline
from filters.content import ContentOutcome
from filters.facts import Facts
from filters.lists import domain_of, with_dynamic_lists
from filters.mail import Mail
from filters.policy import DomainPolicy
from filters.runtime import Policy
from filters.verdict import Action, Category, Hit, Stage, Verdict, VirusFinding

BUDGET_SYMBOL = "FILTER_TIME_BUDGET"


def evaluate(mail: Mail, facts: Facts, policy: Policy) -> Verdict:
    """Decide what happens to ``mail``. No I/O, no clock: the same inputs, the same verdict.

    The policy of the first recipient's domain applies; the gateway hands the
    pipeline one domain's recipients at a time. When the policy carries a
    clock, a stage that would start after ``limits.time_budget`` is skipped,
    and ``FILTER_TIME_BUDGET`` names the skipped stages and asks for
    ``limits.time_budget_action``.
    """
    name = domain_of(mail.recipients[0]) if mail.recipients else ""
    domain = with_dynamic_lists(policy.config.domain_policy(name), facts.lists.get(name))
    limits = policy.config.limits
    deadline = Deadline.after(limits.time_budget, policy.clock)
    archive = ArchiveLimits(limits.archive_depth, limits.archive_members, limits.archive_bytes)
    viruses = antivirus.scan(mail, policy.viruses, archive, deadline)
    if viruses:
        return _virus_verdict(viruses)
    skipped: list[Stage] = []
    action, score, hits = _spam(mail, facts, policy, domain, deadline, skipped)
    found = content.check(mail, policy.config, domain) if not deadline.passed() else None
    if found is None:
        skipped.append(Stage.CONTENT)
        found = ContentOutcome()
    hits += found.hits
    if skipped:
        hits.append(_over_budget(deadline, skipped, limits.time_budget_action))
        action = max(action, limits.time_budget_action)
    category = Category.SPAM if action > Action.DELIVER else Category.CLEAN
    redirect_to = domain.redirect_to
    if found.action > action:
        action, category, redirect_to = found.action, Category.CONTENT, found.redirect_to
    return Verdict(
        action=action,
        category=category,
        hits=tuple(hits),
        score=score,
        redirect_to=redirect_to if action is Action.REDIRECT else None,
        copy_to=found.copy_to,
        subject_tag=domain.subject_tag if action is Action.TAG_SUBJECT else None,
    )


def _over_budget(deadline: Deadline, skipped: list[Stage], action: Action) -> Hit:
    stages = ", ".join(skipped)
    reason = f"filtering took over {deadline.seconds:g} s; not run: {stages}"
    return Hit(BUDGET_SYMBOL, Stage.PARSER, reason, 0.0, action)


def _spam(
    mail: Mail,
    facts: Facts,
    policy: Policy,
    domain: DomainPolicy,
    deadline: Deadline,
    skipped: list[Stage],
) -> tuple[Action, float, list[Hit]]:
    """The anti-spam stages in contract order, with the "only if more severe" rule."""
    trusted = whitelist.check(mail, policy.config, domain)
    if trusted is not None:
        return Action.DELIVER, 0.0, [trusted]
    hits = list(blacklist.check(mail, facts, policy.config, domain))
    action = _most_severe(hits)
    score = sum(h.score for h in hits)
    if domain.actions.signatures > action:
        if deadline.passed():
            skipped.append(Stage.SIGNATURES)
        else:
            found = signatures.check(
                mail,
                policy.signatures,
                domain.actions.signatures,
                policy.config.signatures.fuzzy_distance,
            )
            hits += found
            action = max(action, _most_severe(found))
            score += sum(h.score for h in found)
    if domain.heuristics.top_action > action:
        if deadline.passed():
            skipped.append(Stage.HEURISTICS)
        else:
            found, heuristic_score = heuristics.check(mail, policy.model, domain.heuristics)
            hits += found
            action = max(action, _most_severe(found))
            score += heuristic_score
    return action, score, hits


def _most_severe(hits: list[Hit] | tuple[Hit, ...]) -> Action:
    return max((h.action for h in hits), default=Action.DELIVER)


def _virus_verdict(viruses: tuple[VirusFinding, ...]) -> Verdict:
    """Mass-mailers are deleted at once; other infected mail goes to the virus quarantine."""
    hits = tuple(
        Hit(
            "VIRUS_MASS_MAILER" if v.mass_mailer else "VIRUS_FOUND",
            Stage.ANTIVIRUS,
            f"{v.name} in {v.where}",
            0.0,
            Action.DELETE if v.mass_mailer else Action.QUARANTINE,
        )
        for v in viruses
    )
    action = Action.DELETE if all(v.mass_mailer for v in viruses) else Action.QUARANTINE
    return Verdict(action=action, category=Category.VIRUS, hits=hits, viruses=viruses)
