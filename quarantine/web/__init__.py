"""The customers' own quarantine pages: magic-link sign-in, the held-mail list, actions, admin."""
