"""The shipped example gateway config, policy and signatures (installed as mailmoat_examples)."""
