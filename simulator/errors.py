"""The simulator's errors: a bad scenario names its file and key."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario file cannot be read or does not describe a possible month."""
