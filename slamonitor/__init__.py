"""Mailmoat SLA monitor: service levels computed from event records."""
