"""Mailmoat test suite; mirrors the package layout."""
