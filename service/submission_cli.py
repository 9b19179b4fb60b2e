"""``mailmoat submission-user add|remove|list``: the accounts of the submission listener.

The password is read from standard input (first line) when it is not a
terminal, else prompted for twice without echo; it never appears in the
process list or the shell history. Only its scrypt hash is stored.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from store import submission_users

MIN_PASSWORD = 8
"""Characters; shorter passwords are refused, whatever the hash's cost."""


def read_password() -> str:
    """The new password: a prompt on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_submission_user(args: argparse.Namespace) -> int:
    from service.config import load_config  # the gateway's imports only for this command
    from store.store import Store

    config = load_config(args.config)
    domain = (args.domain or "").lower().strip(".") or None
    if domain is not None and domain not in config.domains:
        known = ", ".join(sorted(config.domains)) or "none"
        raise ValueError(f"{domain} is not among the gateway's domains ({known})")
    password_hash = ""
    if args.action == "add":
        password = read_password()
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
        password_hash = submission_users.hash_password(password)
    store = Store(config.store.location)
    try:
        if args.action == "add":
            assert domain is not None
            store.write(submission_users.add, domain, args.user, password_hash, time.time())
            print(f"submission user {args.user} added for {domain}")
        elif args.action == "remove":
            assert domain is not None
            store.write(submission_users.remove, domain, args.user)
            print(f"submission user {args.user} removed from {domain}")
        else:
            for user in store.read(submission_users.listing, domain):
                print(f"{user.domain}  {user.login}")
    finally:
        store.close()
    return 0


def add_submission_user(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``submission-user`` on the top-level parser."""
    p = sub.add_parser("submission-user", help="manage the submission listener's accounts")
    p.add_argument(
        "--config", type=Path, help="gateway config (default: the shipped examples/gateway.toml)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="a new account; password from stdin or a prompt")
    add.add_argument("domain", help="a registered domain the user sends for")
    add.add_argument("user", help="the AUTH login, unique across domains")
    remove = actions.add_parser("remove", help="delete an account")
    remove.add_argument("domain")
    remove.add_argument("user")
    listing = actions.add_parser("list", help="accounts, of one domain or all")
    listing.add_argument("domain", nargs="?")
    p.set_defaults(func=cmd_submission_user)
