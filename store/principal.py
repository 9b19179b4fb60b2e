"""Who is calling the REST API: an operator (every domain) or a customer (its own domains).

Endpoints take a ``Principal`` from the authentication dependency and ask it
``sees(domain)`` before touching anything; a foreign object answers 404,
the same as a missing one, so a customer cannot even learn it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

USER = "user:"
"""Name prefix of an end user signed in to the web pages: ``user:<address>``."""
LINK = "link:"
"""Name prefix of an end user acting through a digest link: ``link:<address>``."""
END_USER_PREFIXES = (USER, LINK)
"""How the names of end users' principals start; the rest are API tokens held by
administrators (a customer's or the operator's). Online learning refuses releases by these,
so the places that name end users build the names from the same constants."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of an API token."""

    name: str
    operator: bool
    domains: frozenset[str] = frozenset()

    def sees(self, domain: str) -> bool:
        return self.operator or domain.lower() in self.domains
