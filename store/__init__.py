"""Mailmoat's store: tables, record types, the store API, its writer thread and migrations."""
