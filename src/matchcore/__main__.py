"""Command line: ``matchcore SUBCOMMAND …`` (also ``python -m matchcore``).

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``; the
module is imported only when its subcommand runs, so ``matchcore --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("matchcore.demo", "push a generated order flow through the book: fills and latency"),
}


def _register_optional() -> None:
    # Subcommands whose modules may not be present in every build of the package.
    for name, module, help_ in (
        ("replay", "matchcore.cli_replay", "replay tick files (ITCH 5.0, DBN MBO, LOBSTER, native) through the book"),
        ("gen-itch", "matchcore.cli_replay", "write a seeded, realistic ITCH 5.0 file"),
        ("book", "matchcore.cli_replay", "print (or plot) the book of one symbol at a moment"),
        ("bench", "matchcore.cli_bench", "latency and throughput benchmarks measured in compiled code"),
        ("journal", "matchcore.cli_durability", "inspect an engine journal (segments, damage) or its trades"),
        ("recover", "matchcore.cli_durability", "rebuild an engine from its journal directory"),
        ("subscribe", "matchcore.cli_subscribe",
         "read market data published to NATS JetStream: top of book, L2, trades per symbol"),
    ):
        if importlib.util.find_spec(module) is not None:
            SUBCOMMANDS[name] = (module, help_)


def main(argv: list[str] | None = None) -> int:
    _register_optional()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="matchcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    # Only the subcommand's name is parsed here; its module defines and parses the rest, so
    # that `matchcore replay --help` shows the replay options.
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv[:1])
        parser.print_help()
        return 2
    command = argv[0]
    if command not in SUBCOMMANDS:
        parser.parse_args(argv[:1])  # exits with argparse's "invalid choice" message
    module, help_ = SUBCOMMANDS[command]
    mod = importlib.import_module(module)
    sub_parser = argparse.ArgumentParser(prog=f"matchcore {command}", description=help_)
    mod.add_parser(sub_parser, command)
    sub_args = sub_parser.parse_args(argv[1:])
    sub_args.command = command
    return int(mod.run(sub_args) or 0)


if __name__ == "__main__":
    sys.exit(main())
