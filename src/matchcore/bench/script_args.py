"""Argument checks shared by the benchmark scripts in ``benchmarks/``: a value a script cannot
use is a usage error (exit 2) before any work, not a traceback after minutes of it."""
from __future__ import annotations

import argparse
import os

# ``type=`` of an integer option whose range the script checks itself: plain ASCII decimal
# digits, a leading ``-`` left to that check (the matchcore commands' own rule)
from matchcore._cliutil import integer


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun, singular for 1 ("1 run", "7 runs"): the scripts' headings said
    "of 1 runs" for ``--repeat 1``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def decimal_size(n_bytes: float) -> str:
    """A file size in decimal units for the scripts' headings: MB from 1 MB up, else KB ("0.0
    MB" was printed for a small run's input, as if it held nothing).

    >>> decimal_size(31_400), decimal_size(2_500_000)
    ('31.4 KB', '2.5 MB')
    """
    if abs(n_bytes) >= 1e6:
        return f"{n_bytes / 1e6:,.1f} MB"
    return f"{n_bytes / 1e3:,.1f} KB"


def at_least_one(text: str) -> int:
    """``type=`` of a count option: an integer >= 1. A count of 0 ran parts of a script and
    then failed on an empty median, ``min()`` of nothing or a division by zero. Plain ASCII
    decimal digits, as the matchcore commands' counts (``int()`` also took ``1_000``, ``+5``
    and padding)."""
    value = integer(text)       # ValueError: argparse says "invalid at_least_one value: ..."
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def at_least_zero(text: str) -> int:
    """``type=`` of a seed or size option: an integer >= 0 in plain ASCII decimal digits (a
    negative seed was numpy's traceback once the workload was made)."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def seed(text: str) -> int:
    """``type=`` of the ``--seed`` of a script that generates ITCH days: an integer in the
    generator's range [0, 2**64), as ``matchcore bench --seed`` (beyond it, the generator's
    traceback once the machine had been described), in plain ASCII decimal digits."""
    value = at_least_zero(text)
    if value >= 2**64:
        raise argparse.ArgumentTypeError(f"must be < 2**64, got {value}")
    return value


def check_json_output(parser: argparse.ArgumentParser, path: str | None) -> None:
    """``parser.error`` for a ``--json`` path that names a directory (one that exists, or a
    name ending with a separator, ``out/``) or lies in none, or that cannot be written as the
    matchcore commands' ``--json`` cannot (a symlink to a file in a directory that does not
    exist, a symlink loop, a directory that takes no new file): found only when the figures
    were written, after the whole run, a traceback and the figures lost (or, for ``out/``, a
    file ``out`` written). Nothing for ``None``."""
    if not path:
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        parser.error(f"argument --json: {path}: is a directory, not a file name")
    from matchcore._cliutil import check_output_file, names_a_directory

    if names_a_directory(path):
        parser.error(f"argument --json: {path}: names a directory (it ends with {os.sep}), "
                     f"not a file")
    if not os.path.isdir(parent):
        parser.error(f"argument --json: {path}: no directory {parent} to write it in")
    try:
        check_output_file("argument --json:", path)
    except ValueError as e:
        parser.error(str(e))


def check_workload_size(parser: argparse.ArgumentParser, option: str, messages: int,
                        workloads=("standard",)) -> None:
    """``parser.error`` for ``messages`` flow commands (given as ``option``) that one of the
    generated ``workloads`` cannot number with 63-bit order ids, as ``matchcore bench
    --messages`` refuses them: the generator's traceback (naming its ``first_id``) came once
    the script's first measurements had been taken."""
    from matchcore._cliutil import refuse_unnumbered_messages

    try:
        refuse_unnumbered_messages(messages, list(workloads), f"argument {option}:")
    except ValueError as e:
        parser.error(str(e))


def check_directory(parser: argparse.ArgumentParser, option: str, path: str | None) -> None:
    """``parser.error`` for a directory option (``--dir``) naming no directory the script can
    make its files in: missing, a file, or one that takes no new file (a read-only mount).
    Found only when the first file was made there, it was a traceback. Nothing for ``None``."""
    if path is None:
        return
    if not os.path.exists(path):
        parser.error(f"argument {option}: {path}: no such directory")
    if not os.path.isdir(path):
        parser.error(f"argument {option}: {path}: is not a directory")
    from matchcore._cliutil import refuse_unwritable_directory

    try:
        refuse_unwritable_directory(f"argument {option}:", path, path)
    except ValueError as e:
        parser.error(str(e))


def check_itch_days(parser: argparse.ArgumentParser, messages: int, symbols) -> None:
    """``parser.error`` for a generated ITCH day a script cannot make: a symbol count of
    ``symbols`` past 65535, or ``messages`` fewer than a day of that many symbols holds (its
    directory, trading actions, crosses and system events). The generator's refusal came as
    a traceback, and in a script of several days only when that day's turn came."""
    from matchcore.itch._gen import min_messages

    for k in symbols:
        if k > 65535:
            parser.error(f"argument --symbols: must be in 1..65535, got {k}")
        least = min_messages(k)
        if messages < least:
            parser.error(f"argument --messages: {messages} is too few for --symbols {k}: the "
                         f"day needs at least {least}")
