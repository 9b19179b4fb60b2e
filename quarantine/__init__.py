"""Mailmoat quarantine: held mail, retention, release."""
