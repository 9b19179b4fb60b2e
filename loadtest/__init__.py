"""Mailmoat replay bench: labelled corpora in, throughput and FP/FN out."""
