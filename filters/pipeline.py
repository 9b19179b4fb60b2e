"""The pipeline: one pure function from a message, its facts and a policy to a verdict.

Every stage is a function returning ``tuple[Hit, ...]``; the stage order and
the severity rule (SPEC 2.4, 2.6) live in ``_spam`` and nowhere else: a
whitelist hit ends the spam checks; the blacklist always runs; signatures and
heuristics run only when the action they are configured to take is more
severe than the one already chosen, and then supersede it. A ``delete`` ends
the pipeline: a later stage runs only "if the email has not been deleted"
(Telstra anti-spam terms), however severe its action. Anti-virus runs first
on every message and, when it finds something, decides alone. Content
control is the customer's own policy and runs last, for whitelisted senders
too; the more severe of spam and content wins. A stage that does not run is
recorded in ``Verdict.skipped``. Sender-authentication facts become hits
whose scores count with the heuristics. Outbound mail (sent by a customer's
own user) is judged by the sender domain's policy, and its ``outbound``
switches may turn the anti-spam stages or the content rules off; anti-virus
always runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from filters import antivirus, blacklist, content, heuristics, sender_auth, signatures, whitelist
from filters.archives import ArchiveLimits
from filters.budget import Deadline
from filters.compress import compress_attachments
from filters.facts import Facts
from filters.lists import domain_of, with_dynamic_lists
from filters.mail import Mail
from filters.policy import DomainPolicy
from filters.runtime import Policy
from filters.verdict import Action, Category, Hit, Stage, Verdict, total_score

BUDGET_SYMBOL = "FILTER_TIME_BUDGET"


@dataclass
class _Run:
    """What the spam stages found so far, and which did not run."""

    hits: list[Hit] = field(default_factory=list)
    skipped: list[Stage] = field(default_factory=list)
    over_budget: list[Stage] = field(default_factory=list)

    @property
    def action(self) -> Action:
        return max((h.action for h in self.hits), default=Action.DELIVER)

    @property
    def deleted(self) -> bool:
        """A stage deleted the message: no later stage runs, however severe (SPEC 2.4)."""
        return self.action is Action.DELETE


def evaluate(mail: Mail, facts: Facts, policy: Policy, *, outbound: bool = False) -> Verdict:
    """Decide what happens to ``mail``. No I/O, no clock: the same inputs, the same verdict.

    The policy of the first recipient's domain applies; the gateway hands the
    pipeline one domain's recipients at a time. ``outbound`` mail is judged by
    the sender's domain's policy and its ``outbound`` switches. When the policy carries a
    clock, a stage that would start after ``limits.time_budget`` is skipped,
    and ``FILTER_TIME_BUDGET`` names the skipped stages and asks for
    ``limits.time_budget_action``.
    """
    if outbound:
        name = mail.sender_domain
    else:
        name = domain_of(mail.recipients[0]) if mail.recipients else ""
    domain = with_dynamic_lists(policy.config.domain_policy(name), facts.lists.get(name))
    spam_on = domain.outbound.spam or not outbound
    content_on = domain.outbound.content or not outbound
    limits = policy.config.limits
    deadline = Deadline.after(limits.time_budget, policy.clock)
    archive = ArchiveLimits(limits.archive_depth, limits.archive_members, limits.archive_bytes)
    found = antivirus.check(mail, policy.viruses, archive, deadline)
    if found:
        return _virus_verdict(found)
    run = _Run()
    if spam_on:
        _spam(mail, facts, policy, domain, deadline, run)
    else:
        run.skipped += [Stage.WHITELIST, Stage.BLACKLIST, Stage.SIGNATURES, Stage.HEURISTICS]
    action, score = run.action, total_score(run.hits)
    if run.deleted or not content_on:
        run.skipped.append(Stage.CONTENT)
        rules: tuple[Hit, ...] = ()
    elif deadline.passed():
        run.over_budget.append(Stage.CONTENT)
        rules = ()
    else:
        rules = content.check(mail, policy.config, domain)
    hits = [*run.hits, *rules]
    if run.over_budget:
        stages = ", ".join(run.over_budget)
        reason = f"filtering took over {deadline.seconds:g} s; not run: {stages}"
        hits.append(Hit(BUDGET_SYMBOL, Stage.PARSER, reason, 0.0, limits.time_budget_action))
        action = max(action, limits.time_budget_action)
    category = Category.SPAM if action > Action.DELIVER else Category.CLEAN
    redirect_to = domain.redirect_to
    rules_action = max((h.action for h in rules), default=Action.DELIVER)
    if rules_action > action:
        action, category, redirect_to = rules_action, Category.CONTENT, content.redirect_to(rules)
    return Verdict(
        action=action,
        category=category,
        hits=tuple(hits),
        score=score,
        redirect_to=redirect_to if action is Action.REDIRECT else None,
        copy_to=content.copy_to(rules),
        subject_tag=domain.subject_tag if action is Action.TAG_SUBJECT else None,
        skipped=(*run.skipped, *run.over_budget),
        headers=(("Authentication-Results", facts.auth.header),) if facts.auth else (),
        rewritten=_compressed(mail, rules, action),
    )


def _compressed(mail: Mail, rules: tuple[Hit, ...], action: Action) -> bytes | None:
    """The message with compressing rules' attachments zipped, when it is delivered at all."""
    positions = content.to_compress(rules)
    if not positions or action > Action.REDIRECT:
        return None
    return compress_attachments(mail.raw, positions)


def _spam(
    mail: Mail, facts: Facts, policy: Policy, domain: DomainPolicy, deadline: Deadline, run: _Run
) -> None:
    """The anti-spam stages in contract order, with the "only if more severe" rule."""
    trusted = whitelist.check(mail, policy.config, domain)
    if trusted:
        run.hits += trusted
        run.skipped += [Stage.BLACKLIST, Stage.SIGNATURES, Stage.HEURISTICS]
        return
    run.hits += blacklist.check(mail, facts, policy.config, domain)
    scores = policy.config.scores
    if run.deleted or domain.actions.signatures <= run.action:
        run.skipped.append(Stage.SIGNATURES)
    elif deadline.passed():
        run.over_budget.append(Stage.SIGNATURES)
    else:
        distance = policy.config.signatures.fuzzy_distance
        action = domain.actions.signatures
        run.hits += signatures.check(mail, policy.signatures, action, distance, scores)
    authenticated = sender_auth.check(facts.auth, policy.config)
    if run.deleted or domain.heuristics.top_action <= run.action:
        run.hits += authenticated
        run.skipped.append(Stage.HEURISTICS)
    elif deadline.passed():
        run.hits += authenticated
        run.over_budget.append(Stage.HEURISTICS)
    else:
        model, rules = policy.model, domain.heuristics
        run.hits += heuristics.check(mail, model, rules, scores, authenticated)


def _virus_verdict(hits: tuple[Hit, ...]) -> Verdict:
    """Mass-mailers are deleted at once; other infected mail goes to the virus quarantine."""
    viruses = tuple(h.virus for h in hits if h.virus is not None)
    action = Action.DELETE if all(v.mass_mailer for v in viruses) else Action.QUARANTINE
    skipped = (Stage.WHITELIST, Stage.BLACKLIST, Stage.SIGNATURES, Stage.HEURISTICS, Stage.CONTENT)
    return Verdict(
        action=action, category=Category.VIRUS, hits=hits, viruses=viruses, skipped=skipped
    )
