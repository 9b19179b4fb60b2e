"""Mailmoat filter pipeline: pure decisions on a message, a policy and facts."""
