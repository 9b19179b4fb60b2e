"""The ``mailmoat`` command line: one entry point, one small function per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from filters.facts import NO_FACTS
from filters.mail import Mail
from filters.model import ModelError
from filters.pipeline import evaluate
from filters.policy import PolicyConfig, PolicyError
from filters.runtime import Policy
from filters.training import train
from loadtest.cli import add_replay
from loadtest.corpus import CorpusError, CorpusFormatError, read_corpus
from loadtest.generate import generate
from loadtest.relaytest_cli import add_relaytest
from service.evaluate_cmd import add_evaluate
from service.lock import StoreLocked
from service.submission_cli import add_submission_user
from slamonitor.cli import add_commands as add_sla_commands

DEFAULT_POLICY = Path(str(files("mailmoat_examples").joinpath("policy.toml")))

CONFIG_HELP = "gateway config (default: the shipped examples/gateway.toml)"

console = Console()
errors = Console(stderr=True)


def _policy(args: argparse.Namespace) -> Policy:
    model = getattr(args, "model", None)
    if args.policy is None:
        return Policy.from_config(PolicyConfig(), model=model)
    return Policy.load(args.policy, model=model)


def _report_error(error: CorpusError) -> None:
    errors.print(f"[yellow]skipped[/] {error}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train the token model on a labelled corpus and save it, one message in memory at a time."""
    samples = (
        (Mail.from_file_bytes(item.data), item.label == "spam")
        for item in read_corpus(args.corpus, args.labels, on_error=_report_error)
        if item.label is not None
    )
    model = train(samples, seed=args.seed, corpus=str(args.corpus))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    console.print(
        f"trained on {model.metadata['ham']} ham + {model.metadata['spam']} spam, "
        f"{len(model.weights)} tokens -> {args.out}"
    )
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Print the verdict and every hit for each message file."""
    policy = _policy(args)
    status = 0
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            errors.print(f"[red]{path}: cannot read: {exc.strerror}[/]")
            status = 1
            continue
        verdict = evaluate(Mail.from_file_bytes(data), NO_FACTS, policy)
        # Plain print: verdict lines are long and must not be re-wrapped by the console.
        print(f"{path}: {verdict.explain()}")
    return status


def cmd_generate(args: argparse.Namespace) -> int:
    """Write the built-in sample corpus (ham, spam, a few EICAR viruses) with labels."""
    labels = generate(args.out, args.count, seed=args.seed, viruses=args.viruses,
                      domain=args.domain)  # fmt: skip
    console.print(f"{args.count} messages written; labels in {labels}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole product on embedded defaults: replay a sample, report, keep serving."""
    import asyncio

    from service.demo import run

    return asyncio.run(run(args.config))


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate a scenario's month on a virtual clock and check the SLA report against truth."""
    from simulator.cli import simulate_command  # numpy-heavy; only this command needs it

    return simulate_command(
        args.scenario, args.out, args.messages, console, alerts=not args.no_alerts
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway: SMTP, filtering, delivery and HTTP in one process (or N workers)."""
    from service.serve import serve  # the gateway's imports are not needed by other commands

    return serve(args.config, args.workers, train_sample_model=args.train_sample)


def cmd_token(args: argparse.Namespace) -> int:
    """Create, list or revoke REST API tokens in the gateway's store."""
    import time

    from quarantine import tokens
    from service.config import load_config
    from store.store import Store

    config = load_config(args.config)
    if args.action == "create":
        if args.operator == bool(args.domain):
            errors.print("[red]mailmoat token create: give --domain (a customer) or --operator "
                         "(every domain), not both[/]")  # fmt: skip
            return 2
        unknown = sorted({d.lower().strip(".") for d in args.domain} - set(config.domains))
        if unknown:
            errors.print(f"[red]mailmoat token create: {', '.join(unknown)} not among the "
                         f"gateway's domains ({', '.join(sorted(config.domains))})[/]")  # fmt: skip
            return 2
    store = Store(config.store.location)
    try:
        if args.action == "create":
            token_id, token = store.write(
                tokens.create, name=args.name or ",".join(args.domain) or "operator",
                operator=args.operator, domains=args.domain, now=time.time(),
            )  # fmt: skip
            print(f"token {token_id} created; it is shown only once:\n{token}")
        elif args.action == "revoke":
            if not store.write(tokens.revoke, args.id, time.time()):
                errors.print(f"[red]no active token {args.id}[/]")
                return 1
            print(f"token {args.id} revoked")
        else:
            for t in store.read(tokens.listing):
                who = "operator" if t.operator else ",".join(t.domains)
                state = "revoked" if t.revoked_at else "active"
                print(f"{t.id}  {state:8} {t.name:20} {who}")
    finally:
        store.close()
    return 0


def _store_path(config: Path | None) -> Path | str:
    from service.config import load_config  # the gateway's config only when a store is read

    return load_config(config).store.location


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailmoat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def corpus_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", type=Path, required=True, help="corpus directory or index file")
        p.add_argument("--labels", type=Path, help="index file, relative to the corpus directory")

    def policy_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--policy", type=Path, help="policy file (TOML or YAML)")
        p.add_argument("--model", type=Path, help="token model; overrides the policy's model")

    p = sub.add_parser("train", help="train the statistical token model")
    corpus_args(p)
    p.add_argument("--out", type=Path, required=True, help="where to write the model (.npz)")
    p.add_argument("--seed", type=int, default=None, help="recorded in the model's metadata")
    p.set_defaults(func=cmd_train)

    add_evaluate(sub, corpus_args, policy_args)

    p = sub.add_parser("scan", help="print verdicts and hits for message files")
    p.add_argument("files", type=Path, nargs="+", help="raw RFC 822 message files")
    policy_args(p)
    p.set_defaults(func=cmd_scan)
    p = sub.add_parser("generate", help="write the built-in labelled sample corpus")
    p.add_argument("--out", type=Path, required=True, help="directory to write into")
    p.add_argument("--count", type=int, default=200, help="messages")
    p.add_argument("--seed", type=int, default=7, help="same seed, same corpus")
    p.add_argument("--viruses", type=int, default=4, help="messages carrying EICAR")
    p.add_argument("--domain", default="example.test", help="recipients' domain")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("serve", help="run the SMTP gateway")
    p.add_argument(
        "--config",
        type=Path,
        help=CONFIG_HELP,
    )
    p.add_argument("--workers", type=int, default=1, help="processes sharing the SMTP port")
    p.add_argument(
        "--train-sample",
        action="store_true",
        help="no model yet: train one on the built-in sample first (for trying it out)",
    )
    p.set_defaults(func=cmd_serve)

    add_sla_commands(sub, _store_path)

    p = sub.add_parser("simulate", help="a month of service in minutes, checked against truth")
    p.add_argument("scenario", type=Path, help="scenario file (TOML), see examples/scenarios")
    p.add_argument("--out", type=Path, required=True, help="directory for events.db and reports")
    p.add_argument("--messages", type=int, help="total messages (default: the scenario's)")
    p.add_argument("--no-alerts", action="store_true", help="skip the rules on Prometheus")
    p.set_defaults(func=cmd_simulate)
    add_replay(sub)
    add_relaytest(sub)

    p = sub.add_parser("demo", help="start the gateway, replay a sample corpus, print reports")
    p.add_argument(
        "--config",
        type=Path,
        help=CONFIG_HELP,
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("token", help="manage REST API tokens")
    p.add_argument(
        "--config",
        type=Path,
        help=CONFIG_HELP,
    )
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new token (printed once)")
    create.add_argument("--domain", action="append", default=[], help="a customer's domain")
    create.add_argument("--operator", action="store_true", help="sees every domain")
    create.add_argument("--name", help="who holds it")
    revoke = actions.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    actions.add_parser("list", help="every token, active or revoked")
    p.set_defaults(func=cmd_token)
    add_submission_user(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (
        PolicyError,
        ModelError,
        StoreLocked,
        CorpusFormatError,
        ValueError,
        OSError,
    ) as exc:  # ConfigError too
        errors.print(f"[red]mailmoat {args.command}: {exc}[/]")
        return 2


if __name__ == "__main__":
    sys.exit(main())
