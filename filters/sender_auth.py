"""Sender-authentication hits: what the SPF, DKIM and DMARC facts say, as named scores.

Pure: it reads ``Facts.auth`` (gathered by ``filters.authentication`` in the
enrich step) and the policy. The hits carry scores only; the heuristics stage
adds them to its total, so the configured thresholds decide the action.
"""

from __future__ import annotations

from filters.facts import AuthResults
from filters.lists import match_entry
from filters.policy import PolicyConfig
from filters.verdict import Hit, Stage


def check(auth: AuthResults | None, config: PolicyConfig) -> tuple[Hit, ...]:
    """DMARC_REJECT / DMARC_QUARANTINE, SPF_FAIL and DKIM_TRUSTED hits; () without facts."""
    if auth is None:
        return ()
    hits = []
    if auth.dmarc == "fail" and auth.dmarc_policy in ("reject", "quarantine"):
        symbol = "DMARC_REJECT" if auth.dmarc_policy == "reject" else "DMARC_QUARANTINE"
        reason = f"DMARC fails and the From domain publishes p={auth.dmarc_policy}"
        hits.append(Hit(symbol, Stage.AUTHENTICATION, reason, config.score(symbol)))
    if auth.spf == "fail":
        reason = "the envelope sender's SPF record does not allow this client"
        hits.append(Hit("SPF_FAIL", Stage.AUTHENTICATION, reason, config.score("SPF_FAIL")))
    trusted = config.auth.trusted_domains
    entry = match_entry("x@" + auth.dkim_domain, trusted) if auth.dkim == "pass" else None
    if entry is not None:
        reason = f"valid DKIM signature of {auth.dkim_domain} (trusted: {entry})"
        hits.append(Hit("DKIM_TRUSTED", Stage.AUTHENTICATION, reason, config.score("DKIM_TRUSTED")))
    return tuple(hits)
