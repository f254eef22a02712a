"""LOBSTER replay: a LOBSTER message file through the compiled book, checked against its orderbook
file.

LOBSTER (lobsterdata.com) ships, per stock and day, a *message* file (one row per event touching
the requested number of levels) and an *orderbook* file (one row per message: the top ``levels``
levels AFTER that message). Message columns: time (seconds after midnight, decimals to the ns),
event type, order id, size (shares), price (dollars x 10000), direction (1 buy, -1 sell; for
executions the side of the resting order). Orderbook columns, per level: ask price, ask size, bid
price, bid size; missing levels hold price 9999999999 (ask) / -9999999999 (bid) and size 0.

Event types and what the replay does with them (no matching: the exchange already matched):

=====  ==========================  ======================================================
type   LOBSTER meaning              replay
=====  ==========================  ======================================================
1      submission of a limit order  rests the order (``mc_rest``)
2      partial cancellation         takes ``size`` off the order (``mc_reduce``)
3      deletion                     removes the order (``mc_cancel``)
4      execution, visible order     takes ``size`` off the order (``mc_reduce``, a trade)
5      execution, hidden order      a trade only; the visible book does not change
6      cross trade (auction)        a trade only
7      trading halt / resume        state only (price -1 halt, 0 quoting, 1 trading)
=====  ==========================  ======================================================

Seeding: orderbook row 1 is the book after message 1, so the book before message 1 is row 1
with message 1 undone at level granularity (a submit's size taken off its level, a cancel's,
deletion's or visible execution's size put back). That book is placed as one synthetic order per
level, with id ``SEED_BASE + side * 2**48 + price`` (outside any LOBSTER id: a price of a
level with shares, or of a message, at or above 2**48 is refused), and then every
message is replayed, message 1 included, so that the book after message 1 equals row 1.

Orders the file never added (they rested before the file starts) are referenced by types 2, 3
and 4: each such reference is counted (``unknown_refs``) and taken off the synthetic seed order
at the message's side and price (``seed_hits``), clamped at what the seed still holds
(``seed_short``); with no seed liquidity left at that price it is skipped (``unresolved``).
"""
from __future__ import annotations

import io
import operator
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from matchcore._cliutil import rate_text, refuse_unusable_name
from matchcore._magic import GZIP_MAGIC, HEAD_SIZE, STATE_MAGICS, foreign_format, state_refusal
from matchcore._core import OrderBook, _flag_arg
from matchcore._lobster import COUNTER_NAMES, SEED_BASE, replay as _replay, seed_id, transitions

ASK_DUMMY = 9999999999
BID_DUMMY = -9999999999

TRADE_DTYPE = np.dtype([("ts_ns", "<i8"), ("order_id", "<i8"), ("price", "<i8"), ("qty", "<i8"),
                        ("side", "u1"), ("type", "u1")])
"""Trades of a replay: ``side`` is the resting order's side (0 buy, 1 sell); ``type`` the
LOBSTER event type (4 visible, 5 hidden, 6 cross)."""

HALT_STATES = {-1: "halted", 0: "quoting", 1: "trading"}


@dataclass
class LobsterMessages:
    """A LOBSTER message file as columns (numpy arrays of one length)."""

    ts_ns: np.ndarray      # int64, ns after midnight
    type: np.ndarray       # int8
    order_id: np.ndarray   # int64
    size: np.ndarray       # int64
    price: np.ndarray      # int64, dollars x 10000
    direction: np.ndarray  # int8, 1 buy, -1 sell

    def __len__(self):
        return len(self.type)


@dataclass
class LobsterResult:
    """What :func:`replay_lobster` did and found.

    ``counts``: messages per event type. ``counters``: unknown_refs, seed_hits, unresolved,
    seed_short, clamped, delete_mismatch, attr_mismatch, rejected, unknown_types, halt_events
    (see the module docstring). ``seed``: the levels placed before message 1, as (side, price,
    qty) rows. ``trades``: :data:`TRADE_DTYPE`. ``halts``: (ts_ns, code) of every type 7 row;
    ``state`` the last one ("trading" when there was none).

    With ``verify=True``: ``agree_levels[k]`` is how many leading levels (both sides) of the
    book after message k equal orderbook row k, ``levels`` meaning the whole row agrees;
    ``agree = agree_levels == levels``; ``agreement_rate`` its mean; ``first_disagreement`` the
    first row that differs (``message`` counts from 1, as the files' rows do; ``index`` is k, the
    0-based index into ``agree_levels``). ``transitions[k]`` is 1 when row k-1 plus message k
    gives row k (-1 for the first row), ``transition_rate`` the share of checked transitions
    that do, ``first_transition_failure`` the index k of the first that does not.
    """

    book: OrderBook
    messages: int
    counts: dict
    counters: dict
    seed: np.ndarray
    trades: np.ndarray
    halts: np.ndarray
    state: str
    levels: int | None
    elapsed_s: float
    agree_levels: np.ndarray | None = None
    first_disagreement: dict | None = None
    transitions: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def agree(self) -> np.ndarray | None:
        return None if self.agree_levels is None else self.agree_levels == self.levels

    @property
    def agreement_rate(self) -> float | None:
        if self.agree_levels is None or len(self.agree_levels) == 0:
            return None
        return float(np.mean(self.agree_levels == self.levels))

    @property
    def top_of_book_rate(self) -> float | None:
        """Share of messages after which the best bid and ask (price and size) agree."""
        if self.agree_levels is None or len(self.agree_levels) == 0:
            return None
        return float(np.mean(self.agree_levels >= 1))

    @property
    def transition_rate(self) -> float | None:
        if self.transitions is None:
            return None
        checked = self.transitions[self.transitions >= 0]
        return float(np.mean(checked == 1)) if len(checked) else None

    @property
    def first_transition_failure(self) -> int | None:
        if self.transitions is None:
            return None
        bad = np.flatnonzero(self.transitions == 0)
        return int(bad[0]) if len(bad) else None

    def summary(self) -> str:
        from matchcore.bench.report import _count

        c = self.counters
        lines = [
            # (singular for 1, as the other replay summaries count: "1 LOBSTER messages")
            f"{_count(self.messages, 'LOBSTER message')} in {self.elapsed_s * 1e3:.1f} ms "
            f"({rate_text(self.messages / self.elapsed_s if self.elapsed_s else 0)}); "
            # (no messages: "types" with nothing after it)
            "types " + (", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
                        or "none"),
            f"seed: {_count(len(self.seed), 'level')}; references to orders never added: "
            f"{c['unknown_refs']} "
            f"({c['seed_hits']} taken from seed levels, {c['seed_short']} clamped there, "
            f"{c['unresolved']} with no seed left at that price); clamped {c['clamped']}, "
            f"rejected submits {c['rejected']}; {_count(len(self.trades), 'trade')}; "
            f"state {self.state}",
        ]
        if self.agree_levels is not None and len(self.agree_levels) == 0:
            # no rates to give (formatting None raised TypeError: a traceback on the CLI)
            lines.append("verify: no messages, nothing compared")
        elif self.agree_levels is not None:
            lines.append(
                f"verify (top {_count(self.levels, 'level')}, both sides): full agreement after "
                f"{self.agreement_rate:.1%} of messages, best level {self.top_of_book_rate:.1%}; "
                f"first disagreement: {_disagreement(self.first_disagreement)}")
        if self.transitions is not None and self.transition_rate is not None:
            failure = self.first_transition_failure
            lines.append(f"transitions (row k-1 + message k = row k): {self.transition_rate:.2%} "
                         "agree; " + ("no transition fails" if failure is None else
                                      f"first failure at message {failure + 1} "
                                      f"(index {failure})"))
        return "\n".join(lines)


def _disagreement(fd: dict | None) -> str:
    # messages counted from 1, as the README counts them, with the row index beside
    if fd is None:
        return "none"
    return (f"message {fd['message']} (index {fd['index']}), {fd['side']} level {fd['level']}: "
            f"book {fd['book']}, file {fd['file']}")


_NON_BLANK = re.compile(rb"\S")
# a '#' in a line that does not start with one: numpy's reader took the rest of the row as a
# comment, so a damaged row was read with fewer fields than it had
_HASH_IN_ROW = re.compile(rb"^[^#\n][^\n]*#", re.M)
# a '_' in a row: Python's int() and float() take it as a digit-group separator, so "1_000"
# was order id 1000 in a message file (numpy's float parser refused it in an orderbook file)
_UNDERSCORE_IN_ROW = re.compile(rb"^[^#\n][^\n]*_", re.M)
# a carriage return that ends no line ('\r' not before '\n'): numpy's reader refused it as "an
# unquoted embedded newline within a single line of input", naming no line
_CR_IN_ROW = re.compile(rb"^(?!#)[^\n]*?\r(?!\n)", re.M)
# a row: a line that is neither blank nor a comment (numpy's reader skips those)
_FIRST_ROW = re.compile(rb"^[ \t\r]*[^#\s][^\n]*", re.M)
# a line of whitespace alone (its '\r' of a '\r\n' end included): a blank line
_SPACES_LINE = re.compile(rb"^[ \t\r\x0b\x0c]+$", re.M)
# a decimal point followed by a digit other than 0 (after zeros): a fraction float64 may round
_NONZERO_FRACTION = re.compile(rb"\.0*[1-9]")
# where the first field of a line ends, whatever separates the fields
_FIELD_END = re.compile(rb"[,;\t| ]")


def _load_csv(path, min_cols: int, dtype=np.float64, field_name=None):
    """(rows as a 2-D array of ``dtype``, the file line of a row: ``line(k)`` for row k counted
    from 0). With ``dtype=np.int64`` a file of fields other than plain integers comes back as
    float64 where that reads them exactly, else as a text array. ``field_name(column)``: the
    name of a field, for a field that is not a number (with a numeric ``dtype``). The file is
    read once: a pipe
    or FIFO (``/dev/stdin``) has no second reading, and opening it again went on after the
    bytes the first look had buffered, so rows were lost without a word."""
    data = Path(path).read_bytes()
    if data[:len(GZIP_MAGIC)] == GZIP_MAGIC:
        # numpy's CSV reader said "unquoted embedded newline" of the compressed bytes
        raise ValueError(f"{path}: a gzip'd file: LOBSTER CSV files are read uncompressed; "
                         f"decompress it first (gunzip -k {path})")
    if b"\0" in data[:4096] or foreign_format(data[:HEAD_SIZE]) in ("dbn", "native"):
        # before the header guess: a binary file with no newline byte (a small ITCH file)
        # was one "header" line and replayed as 0 messages, exit 0; one with a few newline
        # bytes reached numpy, which warned of lines holding no data
        raise ValueError(f"{path}: {_binary_error(data)}")
    # A UTF-8 byte-order mark (a spreadsheet's export), blank lines and comment lines before
    # the first row are not a row: the mark made the first row look like a header, which was
    # dropped, and a blank first line read as an empty file. A leading comment was taken for
    # the header in place of the line of column names after it, which was then refused as a
    # row, and a file of comments alone holding a digit failed with an AttributeError.
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    blank = 0
    while True:
        end = data.find(b"\n", start)
        first = data[start:] if end < 0 else data[start:end + 1]
        if first.startswith(b"#"):
            if end < 0:
                start, first = len(data), b""
                break
        elif first.strip() or end < 0:
            break
        start, blank = end + 1, blank + 1
    # LOBSTER files have no header; a hand-written one with column names is skipped. Fields
    # are taken as far as any separator: a row of numbers separated by ';' was taken for a
    # header, so a file of one such line replayed 0 messages, exit status 0. A header is a
    # line none of whose fields is a number: a first row whose first field alone was damaged
    # ("3420O.5") was dropped as a header, and the file replayed without its message 1
    header = 0 if any(_is_number(f) for f in _FIELD_END.split(first.strip())) else 1
    skip = blank + header                  # lines before the first row (for line numbers)
    start += len(first) if header else 0
    if any(c in data for c in (b" ", b"\t", b"\x0b", b"\x0c")):
        # a line of spaces or tabs between rows is a blank line, as one before the first row
        # is: numpy's reader took it for a row of 1 column and refused the file ("line 2 has
        # 1 columns, the lines before it 6"). Emptied in place, so line numbers stay; looked
        # for only where such a byte occurs at all, after `start` (the lines before it are
        # skipped already, and an offset into them must not move).
        data = data[:start] + _SPACES_LINE.sub(b"", memoryview(data)[start:])
    line = _row_lines(data, start, skip)
    if not first.strip() or (header and _NON_BLANK.search(data, start) is None):
        return np.empty((0, min_cols), dtype=dtype), line
    # the first row's fields, counted before numpy reads the rows (which it holds to that
    # count): fewer, such as numbers separated by ';', were a bare "1 columns" of no line
    row = _FIRST_ROW.search(memoryview(data)[start:]).group()
    if row.count(b",") + 1 < min_cols:
        n = row.count(b",") + 1
        other = next((c for c in (";", "\t", "|") if c.encode() in row), None)
        raise ValueError(f"{path}: line {line(0)} has {n} column{'s' if n != 1 else ''}, a "
                         f"LOBSTER file of this kind at least {min_cols}"
                         + (f" (its fields are separated by {other!r}: LOBSTER separates them "
                            f"by ',')" if other else ""))
    for char, shown, rows, why in (
            (b"#", "'#'", _HASH_IN_ROW, "a comment is a line of its own, starting with '#'"),
            (b"_", "'_'", _UNDERSCORE_IN_ROW, "a LOBSTER CSV field is a plain number"),
            (b"\r", "carriage return ('\\r')", _CR_IN_ROW,
             "a line ends in '\\n' or '\\r\\n'")):
        # searched only where the byte occurs at all (a scan at memchr's speed); in a view
        # from the first row, so that '^' matches there too
        found = rows.search(memoryview(data)[start:]) if char in data else None
        if found is not None:
            at = data.count(b"\n", 0, start + found.end()) + 1
            raise ValueError(f"{path}, line {at}: a {shown} inside a row ({why})")
    def load(as_dtype):
        with warnings.catch_warnings():
            # numpy's word for each empty line it skips (the last line of many files), which
            # reached the command line's stderr: such lines are no rows, and line() knows it
            warnings.filterwarnings("ignore", r"Input line \d+ contained no data",
                                    UserWarning)
            return np.loadtxt(io.BytesIO(data[start:] if start else data), delimiter=",",
                              dtype=as_dtype, ndmin=2)

    try:
        try:
            arr = load(dtype)
        except ValueError as e:
            if dtype is not np.int64 or "could not convert" not in str(e):
                raise
            arr = None
            # (no exponent either: "1e3" is no plain decimal)
            if data.find(b"e", start) < 0 and data.find(b"E", start) < 0 and \
                    _NONZERO_FRACTION.search(data, start) is None:
                # every decimal point followed by zeros alone ("5853300.0", a float column's
                # export): float64 reads each such field exactly up to 2**53, at its speed
                arr = load(np.float64)
                if (np.abs(arr) >= _MAX_EXACT).any():
                    arr = None      # 2**53 may be 2**53 + 1 rounded
            if arr is None:
                # a field that is no integer ("1e3", "0.5", "abc") or beyond 2**53: the rows
                # as text, for the caller to read each field exactly (float64 rounded
                # 2**53 + 1 to 2**53)
                arr = load(str)
    except ValueError as e:
        # (with np.int64, the text reading failed after the integer one could not convert)
        if field_name is not None and dtype is not str and (
                "could not convert" in str(e) or dtype is np.int64):
            # numpy's "could not convert string 'abc' to float64 at row 1, column 2" counted
            # rows from 0 among the rows it read, so it named neither the file's line nor the
            # field: the rows are read again as text to find the field (only on this path)
            err = _unparsable_field(data[start:] if start else data, path, line, field_name)
            if err is not None:
                raise err from None
        # numpy's words named neither the file nor the line ("the number of columns changed
        # from 6 to 3 at row 3; use `usecols` ..."), or spoke of quoting for a binary file
        raise ValueError(f"{path}: {_csv_error(data, e, line)}") from None
    if arr.size == 0:
        return np.empty((0, min_cols), dtype=dtype), line
    if arr.shape[1] < min_cols:
        raise ValueError(f"{path}: {arr.shape[1]} columns, a LOBSTER file of this kind has at "
                         f"least {min_cols}")
    return arr, line


def _unparsable_field(rows: bytes, path, line, field_name) -> ValueError | None:
    """The error naming the file line and field of the first field of ``rows`` that is not a
    number (as Python's float() reads it), or None where it finds none."""
    # line by line, not numpy's reader again: a later row of another field count made it
    # fail before it reached the field
    k = -1
    for text in rows.split(b"\n"):
        if not text.split(b"#", 1)[0].strip():
            continue                    # blank or comment: no row (as _row_lines counts)
        k += 1
        for col, value in enumerate(text.rstrip(b"\r").split(b",")):
            try:
                float(value)
            except ValueError:
                shown = value.decode("utf-8", "replace")
                return ValueError(f"{path}, line {line(k)}: {field_name(col)} {shown!r} is "
                                  f"not a number")
    return None


def _is_number(field: bytes) -> bool:
    # a quoted number ("34200.1", as some exporters write every field) is a number to the
    # header guess: a first row of quoted fields was dropped as a header, so a file of one
    # such row replayed 0 messages, exit status 0, where its fields are refused as rows
    field = field.strip()
    if len(field) >= 2 and field[:1] in (b'"', b"'") and field[-1:] == field[:1]:
        field = field[1:-1]
    try:
        float(field)
    except ValueError:
        return False
    return True


def _row_lines(data: bytes, start: int, before: int):
    """``line(k)``: the 1-based file line of CSV row k (from 0) of ``data[start:]``, which
    ``before`` lines precede. numpy's reader skips empty lines and ``#`` comments, so after one
    row k is not line ``before + k + 1``. Counted only when asked (an error's message)."""
    def line(row: int) -> int:
        k = -1
        for i, text in enumerate(data[start:].split(b"\n")):
            if text.split(b"#", 1)[0].strip():
                k += 1
                if k == row:
                    return before + i + 1
        return before + row + 1
    return line


def _csv_error(data: bytes, e: ValueError, line) -> str:
    """What numpy's CSV reader found wrong, said of the file: a row of another column count by
    its line, a binary file (DBN, native, ITCH) as not text."""
    if b"\0" in data[:4096] or foreign_format(data[:HEAD_SIZE]) in ("dbn", "native"):
        return _binary_error(data)
    m = re.search(r"number of columns changed from (\d+) to (\d+) at row (\d+)", str(e))
    if m:
        return (f"line {line(int(m.group(3)) - 1)} has {m.group(2)} columns, the lines before it "
                f"{m.group(1)} (a file cut short or not a LOBSTER CSV)")
    return f"not a LOBSTER CSV of comma-separated numbers: {e}"


def _binary_error(data: bytes) -> str:
    """What a binary file given as a LOBSTER CSV is (DBN, native, else binary such as ITCH)."""
    kind = foreign_format(data[:HEAD_SIZE])
    if kind in ("dbn", "native"):
        # the function, as the library's errors name it, and the command line's way
        way = ("matchcore.feeds.dbn.replay_dbn" if kind == "dbn" else
               "matchcore.native.replay_commands")
        return (f"a {'DBN' if kind == 'dbn' else 'native command'} file, not a LOBSTER CSV "
                f"(replay it with {way}, matchcore replay --format {kind})")
    if kind in STATE_MAGICS.values():
        # the message below sent a journal segment or snapshot to the ITCH replay, which
        # refuses it too
        return state_refusal(kind, "", "a LOBSTER message CSV is text").removeprefix(": ")
    return ("a binary file (it holds NUL bytes, which no CSV does), not a LOBSTER CSV (an "
            "ITCH 5.0 file is replayed with matchcore.itch.replay_file, matchcore replay "
            "--format itch)")


_COLUMNS = ("time", "event type", "order id", "size", "price", "direction")
# Prices of levels with shares in an orderbook file, and of messages, are below this: seed ids
# hold them in 48 bits
_SEED_PRICE_LIMIT = 1 << 48
_MAX_EXACT = float(2 ** 53)        # float64 holds every integer up to here exactly
_INT64_MAX = 2 ** 63 - 1


def _file_text(field) -> str:
    """A field of a file's text rows as the file spells it. numpy's reader decodes each byte
    as one character (latin-1), so a UTF-8 field was shown byte by byte: a spreadsheet's minus
    sign (U+2212) in a direction of -1 as three characters, '\xe2\x88\x92'. The field's UTF-8
    reading where its bytes are UTF-8, else as read (a latin-1 file's own characters)."""
    text = str(field)
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def _first_unparsable(text: np.ndarray, cols, parse) -> tuple[int, int]:
    """(row, column) of the first field ``parse`` rejects (only called once a vectorised
    conversion has failed)."""
    for row in range(text.shape[0]):
        for col in cols:
            try:
                parse(str(text[row, col]))
            except (ValueError, OverflowError):
                return row, col
    raise AssertionError("no unparsable field")


def _whole(x: np.ndarray) -> np.ndarray:
    """Where x holds a whole number: all of an integer array (np.floor made its values
    float64, so an int64 size of 2**53 + 2 was refused as not whole), and in a float array a
    whole number a float64 carries exactly (|x| <= 2**53)."""
    if np.issubdtype(x.dtype, np.integer):
        return np.ones(x.shape, dtype=bool)
    return np.isfinite(x) & (np.floor(x) == x) & (np.abs(x) <= _MAX_EXACT)


# Faults of a field read by _exact_fields
_NOT_A_NUMBER, _NOT_WHOLE, _ABOVE_INT64, _BELOW_INT64 = 1, 2, 3, 4


def _exact_field(v) -> tuple[int, int]:
    """(value, fault) of one field: text is read exactly (digits as an int, a decimal or
    exponent form such as "100.0" or "1e3" as the number it spells, never through float64);
    an object array's Python int as it is; anything else (a float, None) as float64 reads it,
    whole only up to 2**53. Fault 0 (value in int64) or one of _NOT_A_NUMBER, _NOT_WHOLE,
    _ABOVE_INT64, _BELOW_INT64 (value 0)."""
    if isinstance(v, bytes):
        v = v.decode("latin-1")
    if isinstance(v, str):
        try:
            n = int(v)
        except ValueError:
            try:
                d = Decimal(v.strip())
            except InvalidOperation:
                return 0, _NOT_A_NUMBER
            if not d.is_finite():
                return 0, _NOT_WHOLE
            if d.adjusted() >= 19:
                # |d| >= 10**19, beyond int64 (and not turned into an int of that many digits)
                return 0, _ABOVE_INT64 if d > 0 else _BELOW_INT64
            if d != d.to_integral_value():
                return 0, _NOT_WHOLE
            n = int(d)
    elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        n = int(v)
    else:
        try:
            x = float(np.float64(v))
        except (TypeError, ValueError):
            return 0, _NOT_A_NUMBER
        if not (np.isfinite(x) and x.is_integer() and abs(x) <= _MAX_EXACT):
            return 0, _NOT_WHOLE
        n = int(x)
    if n > _INT64_MAX:
        return 0, _ABOVE_INT64
    if n < -_INT64_MAX - 1:
        return 0, _BELOW_INT64
    return n, 0


def _exact_fields(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, int8 faults) of an array of text fields (or an object array), each read
    by :func:`_exact_field`. A text array of plain integers, LOBSTER's form, is converted in
    one vectorised cast; field by field only when that fails."""
    if a.dtype.kind in "US":
        try:
            return a.astype(np.int64), np.zeros(a.shape, dtype=np.int8)
        except (ValueError, OverflowError):
            pass
        if a.ndim == 2:
            # one odd field takes only its column through the loop below
            columns = [_exact_fields(a[:, col]) for col in range(a.shape[1])]
            return (np.stack([v for v, _ in columns], axis=1).reshape(a.shape),
                    np.stack([f for _, f in columns], axis=1).reshape(a.shape))
        # Whole numbers written with a fraction of zeros ("5853300.0", as a float column is
        # exported) are their integer part, cast as one: through the loop below such a file
        # read 20 times slower than through float64
        dot = "." if a.dtype.kind == "U" else b"."
        head, sep, tail = np.moveaxis(np.char.partition(a, dot), -1, 0)
        digits = np.char.lstrip(np.char.lstrip(head), "+-" if a.dtype.kind == "U" else b"+-")
        zeros = np.char.str_len(np.char.lstrip(np.char.rstrip(tail),
                                               "0" if a.dtype.kind == "U" else b"0")) == 0
        whole = (np.char.str_len(sep) == 1) & zeros & np.char.isdigit(digits)
        try:
            return (np.where(whole, head, a).astype(np.int64),
                    np.zeros(a.shape, dtype=np.int8))
        except (ValueError, OverflowError):
            pass
    flat = a.reshape(-1).tolist()
    if a.dtype.kind == "O" and all(type(v) is int for v in flat):
        # Python ints alone (an int64 table's object copy): numpy converts them exactly, or
        # raises OverflowError for one beyond int64, which the loop below then names
        try:
            return np.array(flat, dtype=np.int64).reshape(a.shape), np.zeros(a.shape, np.int8)
        except OverflowError:
            pass
    values = np.zeros(a.size, dtype=np.int64)
    faults = np.zeros(a.size, dtype=np.int8)
    for i, v in enumerate(flat):
        values[i], faults[i] = _exact_field(v)
    return values.reshape(a.shape), faults.reshape(a.shape)


def _bad_message_rows(t, ty, oid, size, price, direction) -> list[tuple[np.ndarray, int, str]]:
    """(mask of offending rows, column, why) for every rule a LOBSTER message row must keep;
    ``t`` may be None (already integer nanoseconds)."""
    halt = ty == 7
    rules = [
        (~np.isin(ty, (1, 2, 3, 4, 5, 6, 7)), 1, "is not a LOBSTER event type (1 to 7)"),
        # LOBSTER's cross trades (type 6) carry a pseudo order of a negative id: -1 the opening
        # cross, -2 the closing cross, -3 and -4 other crosses (a file whose open came after
        # 9:30 starts with one); every other event names a real order
        ((oid < 0) & (ty != 6), 2, "is negative (only a type 6 cross trade has a negative id)"),
        (~_whole(size) | (size < 0) | ((size == 0) & ~halt), 3,
         "is not a positive whole number of shares (0 only for type 7)"),
        # a seed order's id is SEED_BASE + side * 2**48 + price, and a reference to an order
        # never added is taken off the seed at its side and price: a buy at p + 2**48 took
        # the sell seed at p, a price near 2**63 wrapped onto a real order's id. Before the
        # rule below (the first rule of a field names it), which says of an int64 price
        # beyond 2**53 that it is not whole; a float one that is not whole is said so there
        (~halt & (price >= _SEED_PRICE_LIMIT)
         & (True if np.issubdtype(price.dtype, np.integer) else _whole(price)), 4,
         "is at or above 2**48, the limit of the seed order ids (SEED_BASE + side * 2**48 "
         "+ price)"),
        (~_whole(price) | (~halt & (price <= 0)) | (halt & ~np.isin(price, (-1, 0, 1))), 4,
         "is not a positive whole price in dollars x 10000 (-1, 0 or 1 for type 7)"),
        (~np.isin(direction, (-1, 1)), 5, "is not a direction (1 buy, -1 sell)"),
    ]
    if t is not None:
        rules.insert(0, (~np.isfinite(t) | (t < 0) | (t >= 9e9), 0,
                         "is not a time in seconds after midnight"))
    return rules


def _first_bad(rules) -> tuple[int, int, str] | None:
    """The earliest offending (row, column, why), the leftmost column first within a row."""
    best = None
    for mask, col, why in rules:
        if mask.any():
            row = int(np.argmax(mask))
            if best is None or (row, col) < best[:2]:
                best = (row, col, why)
    return best


def _refuse_other_than_path(path, name: str = "path", takes: str = "a str or os.PathLike"):
    # pathlib's words ("expected str, bytes or os.PathLike object, not list") named neither
    # the argument nor what it takes; a bytes path it refused likewise
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be {takes}, got {type(path).__name__}")


def _out_of_memory(path, kind: str) -> MemoryError:
    """The MemoryError for a LOBSTER file too large to read here. numpy's own named neither
    the file nor why: "Unable to allocate 17.2 MiB for an array with shape (50000, 6)" of an
    80 MB file (one chunk of the text reading), or nothing at all."""
    try:
        size = f" ({os.stat(path).st_size:,} bytes)"
    except (OSError, ValueError):
        size = ""
    why = ("its fields are read as text first, which takes many times the file's size (about "
           "1.5 GB for an 80 MB file of 2 million messages)" if kind == "message" else
           "the whole file and its rows as integers take several times the file's size (about "
           "1.5 GB for a 240 MB file of a million rows of 10 levels)")
    return MemoryError(f"{path}: not enough memory to read this LOBSTER {kind} file{size}: "
                       f"{why}; free memory or split the file")


def read_messages(path) -> LobsterMessages:
    """Read a LOBSTER message CSV into columns (vectorised ``numpy.loadtxt``, no pandas).

    Times become int64 ns after midnight (exact for LOBSTER's 9 decimals); event types, order
    ids, sizes, prices and directions are read as integers, never through float64 (a size of
    2**53 + 1 stays one; a decimal or exponent form of a whole number, "100.0" or "1e2", is the
    number it spells; a size above 2**63-1, beyond the book's int64, is refused). Every field
    is checked (an event type 1 to 7, a
    non-negative id (a type 6 cross trade's may be negative), whole positive sizes and prices,
    prices below 2**48 (the seed ids' limit), -1/0/1 prices for type 7 halts, direction 1 or
    -1, a finite time): a row that breaks a rule raises ValueError naming its line, and
    nothing is replayed. O(rows).

    >>> m = read_messages("AAPL_2012-06-21_34200000_57600000_message_10.csv")  # doctest: +SKIP
    """
    _refuse_other_than_path(path)
    refuse_unusable_name(path, "path: ")
    try:
        return _read_messages(path)
    except MemoryError:
        raise _out_of_memory(path, "message") from None


def _read_messages(path) -> LobsterMessages:
    text, line = _load_csv(path, 6, dtype=str)

    def fail(row, col, why):
        raise ValueError(f"{path}, line {line(row)}: {_COLUMNS[col]} "
                         f"{_file_text(text[row, col])!r} {why}")

    # The time alone is a decimal (read as float64); the other fields are integers, read
    # exactly: through float64 a size of 2**53 + 1 was read as 2**53, and a price of
    # 4990000.00000000000001 as the whole 4990000.
    try:
        t = text[:, 0].astype(np.float64)
        unparsable = []
    except ValueError:
        unparsable = [(np.arange(len(text)) == _first_unparsable(text, (0,), float)[0], 0)]
    fields = {col: _exact_fields(text[:, col]) for col in (1, 3, 4, 5)}
    unparsable += [(faults == _NOT_A_NUMBER, col) for col, (_, faults) in fields.items()]
    bad = _first_bad([(mask, col, "is not a number") for mask, col in unparsable])
    if bad is not None:
        fail(*bad)
    # read as the fields above: "16113575.0" (a float column's export) is the id it spells,
    # where it was refused as "not a whole order id"
    oid, oid_f = _exact_fields(text[:, 2])
    (ty, ty_f), (size, size_f), (price, price_f), (direction, direction_f) = (
        fields[col] for col in (1, 3, 4, 5))
    halt = ty == 7
    # A field that could not be read holds 0 (_exact_fields' value for it): its fault comes
    # first, so that the error names what the file holds, not the rules' reading of that 0
    faults = [
        (ty_f != 0, 1, "is not a LOBSTER event type (1 to 7)"),
        (oid_f != 0, 2, "is not a whole order id in 0..2**63-1"),
        (size_f == _ABOVE_INT64, 3, "is above 2**63-1, the largest size the book takes"),
        (size_f != 0, 3, "is not a positive whole number of shares (0 only for type 7)"),
        ((price_f == _ABOVE_INT64) & ~halt, 4,
         "is at or above 2**48, the limit of the seed order ids (SEED_BASE + side * 2**48 "
         "+ price)"),
        (price_f != 0, 4,
         "is not a positive whole price in dollars x 10000 (-1, 0 or 1 for type 7)"),
        (direction_f != 0, 5, "is not a direction (1 buy, -1 sell)"),
    ]
    bad = _first_bad(faults + _bad_message_rows(t, ty, oid, size, price, direction))
    if bad is not None:
        fail(*bad)
    return LobsterMessages(
        ts_ns=np.rint(t * 1e9).astype(np.int64),
        type=ty.astype(np.int8),
        order_id=oid,
        size=size,
        price=price,
        direction=direction.astype(np.int8),
    )


def _check_orderbook(a: np.ndarray, where: str, line=None, from_file: bool = False
                     ) -> np.ndarray:
    """The orderbook rows as int64, every field checked: a whole number (a NaN, an infinity or
    a fraction was cast to garbage that seeded the book or failed later naming a synthetic
    order id), a size >= 0, and a positive price wherever the size is positive (an empty level
    holds any price, LOBSTER's dummies included). ValueError names the first bad field, on
    its line (``line(row)``, else row + 1)."""
    if line is None:
        def line(row: int) -> int:
            return row + 1
    if a.ndim != 2 or a.shape[1] % 4:
        raise ValueError(f"{where}: {a.shape[1] if a.ndim == 2 else a.shape} columns is not 4 "
                         f"per level")
    if a.shape[1] == 0:
        # 0 levels of 4: no seed, and verify=True refused after the replay, "levels must be
        # >= 1", of levels not given (or given as 1)
        raise ValueError(f"{where}: 0 columns: an orderbook has 4 per level, at least one level")
    under = np.zeros(a.shape, dtype=bool)
    if a.dtype.kind not in "biuf":
        # text (a file's fields other than plain integers) or objects (Python ints, pandas'
        # values): each field read exactly, where float64 took 2**53 + 1 for 2**53 (and any
        # other kind, complex or structured, field by field to the one that is no number)
        xi, faults = _exact_fields(a)
        if (faults == _NOT_A_NUMBER).any():
            # an object or text array holding no number ("x", pd.NA): numpy's words named
            # neither the array nor the field
            row, col = map(int, np.argwhere(faults == _NOT_A_NUMBER)[0])
            v = a[row, col]
            v = v.item() if isinstance(v, np.generic) else v
            if from_file:
                # (a caller's own array holds its text as it is)
                v = _file_text(v)
            raise ValueError(f"{where}, line {line(row)}: {_orderbook_field(col)} {v!r} "
                             f"is not a number")
        whole = faults != _NOT_WHOLE
        over = faults == _ABOVE_INT64
        under = faults == _BELOW_INT64
        bad = faults != 0
    else:
        x = a.astype(np.float64)
        # an integer array holds whole numbers, beyond 2**53 too
        whole = _whole(x) if not np.issubdtype(a.dtype, np.integer) else np.ones(x.shape, bool)
        if not np.issubdtype(a.dtype, np.integer) and not whole.all():
            bad = ~whole
        else:
            bad = np.zeros(x.shape, dtype=bool)
        # an unsigned array's values above int64's range were cast to negatives: a size of
        # 2**63 was refused as negative, and a price so wrapped stood in an empty level
        over = (a > np.iinfo(np.int64).max) if np.issubdtype(a.dtype, np.unsignedinteger) \
            and not np.can_cast(a.dtype, np.int64) else np.zeros(a.shape, dtype=bool)
        xi = np.where(whole, x, 0).astype(np.int64) if not np.issubdtype(a.dtype, np.integer) \
            else np.where(over, 0, a).astype(np.int64)
        bad |= over
    sizes, prices = xi[:, 1::2], xi[:, 0::2]
    bad[:, 1::2] |= sizes < 0
    # a seed order's id is SEED_BASE + side * 2**48 + price: a price of 2**48 or more gave two
    # seeds one id, or a seed the id of a real order
    bad[:, 0::2] |= (sizes > 0) & ((prices <= 0) | (prices >= _SEED_PRICE_LIMIT))
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        why = ("is not a whole number" + (" (up to 2**53)" if a.dtype.kind == "f" else "")
               if not whole[row, col] else
               "is above 2**63-1 (an orderbook field is an int64)" if over[row, col] else
               "is below -2**63 (an orderbook field is an int64)" if under[row, col] else
               "is negative" if col % 2 else
               "is not a positive price for a level with shares" if xi[row, col] <= 0 else
               "is at or above 2**48, the limit of the seed order ids (SEED_BASE + side * 2**48 "
               "+ price)")
        v = a[row, col]
        # an object array's None (pandas' missing value) has no .item(): an AttributeError
        v = v.item() if isinstance(v, np.generic) else v
        v = int(v) if isinstance(v, float) and v.is_integer() and abs(v) <= _MAX_EXACT else v
        raise ValueError(f"{where}, line {line(row)}: {_orderbook_field(col)} {v} {why}")
    # Levels best first: two levels with shares at one price (or out of order) made a seed
    # with two orders of one synthetic id, refused as "order 9223653511836586464 rejected:
    # DUPLICATE_ORDER_ID", or a seed and comparisons of levels that are no book's.
    for col, what, sign in ((0, "ask", 1), (2, "bid", -1)):
        p, q = xi[:, col::4], xi[:, col + 1::4]
        # LOBSTER fills a side's levels from the best and pads the rest with empty levels: a
        # level with shares after an empty one was never seeded nor compared (both stop at
        # the first empty level), and verify said the book agreed with a row it did not hold
        after_empty = (q[:, 1:] > 0) & np.logical_or.accumulate(q[:, :-1] <= 0, axis=1)
        wrong = (q[:, :-1] > 0) & (q[:, 1:] > 0) & (sign * (p[:, 1:] - p[:, :-1]) <= 0)
        if after_empty.any() and (not wrong.any() or np.argwhere(after_empty)[0][0]
                                  <= np.argwhere(wrong)[0][0]):
            row, lv = map(int, np.argwhere(after_empty)[0])
            gap = int(np.flatnonzero(q[row, :lv + 1] <= 0)[0])
            raise ValueError(f"{where}, line {line(row)}: {what} level {lv + 2} "
                             f"({int(p[row, lv + 1])} x {int(q[row, lv + 1])}) has shares after "
                             f"the empty {what} level {gap + 1} (a side's levels with shares "
                             f"come first, its empty levels after them)")
        if wrong.any():
            row, lv = map(int, np.argwhere(wrong)[0])
            raise ValueError(f"{where}, line {line(row)}: {what} price {lv + 2} "
                             f"{int(p[row, lv + 1])} is not {'above' if sign > 0 else 'below'} "
                             f"{what} price {lv + 1} {int(p[row, lv])} (levels go best first, "
                             f"one price each)")
    return np.ascontiguousarray(xi)


def _orderbook_field(col: int) -> str:
    # the name of an orderbook field in the errors that point at it: "ask size 1"
    return f"{('ask price', 'ask size', 'bid price', 'bid size')[col % 4]} {col // 4 + 1}"


def read_orderbook(path) -> np.ndarray:
    """Read a LOBSTER orderbook CSV as an int64 array (rows, 4 * levels), every field read
    exactly (never through float64) and checked (whole numbers within int64, sizes >= 0, a
    positive price for every level with shares; ValueError naming the line and field).
    O(rows * levels)."""
    _refuse_other_than_path(path)
    refuse_unusable_name(path, "path: ")
    try:
        a, line = _load_csv(path, 4, dtype=np.int64, field_name=_orderbook_field)
        return _check_orderbook(a, str(path), line, from_file=True)
    except MemoryError:
        raise _out_of_memory(path, "orderbook") from None


def _row_levels(row: np.ndarray, side: int) -> list[list[int]]:
    """Visible (price, size) levels of one side of an orderbook row, best first."""
    out = []
    col = 0 if side == 1 else 2
    for i in range(len(row) // 4):
        p, s = int(row[4 * i + col]), int(row[4 * i + col + 1])
        if s <= 0 or p in (ASK_DUMMY, BID_DUMMY):
            break
        out.append([p, s])
    return out


def seed_levels(orderbook_row: np.ndarray, first_type: int, first_price: int, first_size: int,
                first_direction: int) -> np.ndarray:
    """The book before message 1: orderbook row 1 with message 1 undone, as (side, price, qty)
    int64 rows (side 0 buy, 1 sell), best first per side. O(levels)."""
    sides = {0: _row_levels(orderbook_row, 0), 1: _row_levels(orderbook_row, 1)}
    s = 0 if first_direction > 0 else 1
    delta = {1: -first_size, 2: first_size, 3: first_size, 4: first_size}.get(int(first_type), 0)
    if delta:
        lv = sides[s]
        for row in lv:
            if row[0] == first_price:
                row[1] += delta
                break
        else:
            if delta > 0:
                lv.append([first_price, delta])
                lv.sort(key=lambda r: -r[0] if s == 0 else r[0])
        sides[s] = [r for r in lv if r[1] > 0]
    rows = [(side, p, q) for side in (0, 1) for p, q in sides[side]]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def replay_lobster(message_csv, orderbook_csv=None, verify: bool = False, levels: int | None = None,
                   *, book: OrderBook | None = None) -> LobsterResult:
    """Replay a LOBSTER message file through the compiled book (replay mode, no matching).

    ``orderbook_csv`` seeds the book (row 1 with message 1 undone; see the module docstring);
    without it the book starts empty and every reference to an earlier order is unresolved.
    ``verify=True`` (needs ``orderbook_csv``) compares, after every message, the top ``levels``
    levels of both sides (price and size) with the orderbook row, and checks every transition
    (row k-1 + message k = row k); ``levels=None`` uses every level of the file (given
    without ``verify=True``, ValueError: nothing would be compared). The messages
    run in one compiled loop; verification adds O(levels) per message. ``book``: the
    :class:`OrderBook` replayed into (default a new one); a seeded replay refuses one that
    already holds a seed order's id (ValueError, the book unchanged). The replay writes no
    events into the book (those pending there are kept).

    >>> r = replay_lobster("AAPL_..._message_10.csv", "AAPL_..._orderbook_10.csv", verify=True)  # doctest: +SKIP
    >>> r.agreement_rate, r.transition_rate, r.book.best_bid()                                   # doctest: +SKIP
    """
    # before a file is read or the book touched (a truth test took verify="no" for True)
    verify = _flag_arg(verify, "verify")
    if book is not None and not isinstance(book, OrderBook):
        # an AttributeError from the seeding, after both files were read
        raise TypeError(f"book must be a matchcore.OrderBook, got {type(book).__name__}")
    # what the arguments alone decide, before the files are read (levels' range and its
    # need of verify=True: after, as the range comes first)
    if verify and orderbook_csv is None:
        raise ValueError("verify=True needs the orderbook file")
    if levels is not None:
        # an integer, as the books take them: levels=2.5 compared 2 levels and then counted
        # no row as agreeing (agree_levels == 2.5 never holds): agreement 0.0, no error
        try:
            levels = operator.index(levels)
        except TypeError:
            raise TypeError(f"levels must be an integer, got {type(levels).__name__} "
                            f"{levels!r}") from None
    if not isinstance(message_csv, LobsterMessages):
        _refuse_other_than_path(message_csv, "message_csv",
                                "a path (str or os.PathLike) or LobsterMessages")
        refuse_unusable_name(message_csv, "message_csv: ")
    if orderbook_csv is not None and not isinstance(orderbook_csv, np.ndarray):
        _refuse_other_than_path(orderbook_csv, "orderbook_csv",
                                "a path (str or os.PathLike), a numpy array or None")
        refuse_unusable_name(orderbook_csv, "orderbook_csv: ")
    if isinstance(message_csv, LobsterMessages):
        msgs = message_csv
        # before any rule or the book: a shorter column was read past its end by the
        # compiled loop, and its garbage rested in the book, before an IndexError
        cols = {name: np.asarray(getattr(msgs, name)) for name in
                ("ts_ns", "type", "order_id", "size", "price", "direction")}
        if any(c.ndim != 1 for c in cols.values()) or \
                len({len(c) for c in cols.values()}) != 1:
            raise ValueError("LobsterMessages columns must be 1-D and of one length, got "
                             + ", ".join(f"{k} {c.shape}" for k, c in cols.items()))
        # the compiled loop reads int64: another integer dtype is taken exactly; any other
        # raised Cython's "Buffer dtype mismatch" after the seed was placed in the book
        for name in ("ts_ns", "order_id", "size", "price"):
            c = cols[name]
            if not (np.issubdtype(c.dtype, np.integer) and np.can_cast(c.dtype, np.int64)):
                raise ValueError(f"LobsterMessages column {name} holds {c.dtype.name}: it takes "
                                 f"integers that int64 holds exactly")
            cols[name] = c.astype(np.int64, copy=False)
        msgs = LobsterMessages(**cols)
        # columns built by the caller keep the same rules as a file read by read_messages
        bad = _first_bad(_bad_message_rows(None, msgs.type, msgs.order_id, msgs.size,
                                           msgs.price, msgs.direction)
                         + [((msgs.ts_ns < 0) | (msgs.ts_ns >= 9 * 10**18), 0,
                             "is not a time in nanoseconds after midnight")])
        if bad is not None:
            row, col, why = bad
            value = getattr(msgs, ("ts_ns", "type", "order_id", "size", "price",
                                   "direction")[col])[row]
            # as it is: int() of a type or direction column's 1.5 or "1" said "event type 1
            # is not a LOBSTER event type", and of None or NaN raised TypeError or "cannot
            # convert float NaN to integer", naming no message
            value = value.item() if isinstance(value, np.generic) else value
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            shown = repr(value) if isinstance(value, (str, bytes)) else value
            raise ValueError(f"message {row + 1}: {_COLUMNS[col]} {shown} {why}")
    else:
        msgs = read_messages(message_csv)
    ob = None
    if orderbook_csv is not None:
        ob = _check_orderbook(orderbook_csv, "orderbook array") \
            if isinstance(orderbook_csv, np.ndarray) else read_orderbook(orderbook_csv)
        ob = np.ascontiguousarray(ob, dtype=np.int64)
        if len(ob) != len(msgs):
            # each named as given: "the orderbook file ... the message file" named no file,
            # and was said of arrays too
            held = ("the orderbook array" if isinstance(orderbook_csv, np.ndarray)
                    else str(orderbook_csv))
            given = ("the LobsterMessages" if isinstance(message_csv, LobsterMessages)
                     else str(message_csv))
            raise ValueError(f"{held} has {len(ob)} row{'' if len(ob) == 1 else 's'} and "
                             f"{given} {len(msgs)}: LOBSTER writes one row per message")
    file_levels = ob.shape[1] // 4 if ob is not None else None
    if levels is None:
        levels = file_levels
    else:
        if levels <= 0 or (file_levels is not None and levels > file_levels):
            raise ValueError(f"levels must be {'1..' + str(file_levels) if file_levels else '>= 1'}"
                             f", got {levels}")
        if not verify:
            # the depth verify compares: without it, accepted and ignored
            raise ValueError(f"levels={levels} needs verify=True (it is the number of levels "
                             f"verify compares with the orderbook file)")
    if book is None:
        book = OrderBook(capacity=max(1024, len(msgs) // 4))

    t0 = time.perf_counter()
    seed = np.empty((0, 3), dtype=np.int64)
    if ob is not None and len(msgs):
        seed = seed_levels(ob[0], int(msgs.type[0]), int(msgs.price[0]), int(msgs.size[0]),
                           int(msgs.direction[0]))
        ts0 = int(msgs.ts_ns[0])
        # every seed id looked up before any is placed: a book holding one (seeded by an
        # earlier replay of the stock) kept the levels placed before it, and the refusal
        # named a synthetic id alone
        for side, price, _ in seed.tolist():
            if book.get(seed_id(side, price)) is not None:
                raise ValueError(
                    f"the book already holds order {seed_id(side, price)}, the seed order of "
                    f"the {'ask' if side else 'bid'} level at {price} (a book an earlier "
                    f"seeded replay filled): a seeded replay needs a book holding no seed "
                    f"order; the book is unchanged")
        # placed as type 1 rows of the compiled loop, which writes no events: place() wrote
        # an ACCEPTED event per level (not the file's), and draining them took the events the
        # caller's own calls had left in the book with them
        n = len(seed)
        ids = np.array([seed_id(side, price) for side, price, _ in seed.tolist()],
                       dtype=np.uint64)
        placed = _replay(book, np.ones(n, dtype=np.int8), np.full(n, ts0, dtype=np.int64),
                         ids.view(np.int64), np.ascontiguousarray(seed[:, 2]),
                         np.ascontiguousarray(seed[:, 1]),
                         np.where(seed[:, 0] == 0, 1, -1).astype(np.int8), None, 0)[0]
        if placed[COUNTER_NAMES.index("rejected")]:
            # ids, sizes and prices are checked above: only memory can refuse a level
            raise MemoryError("out of memory placing the seed levels in the book")
    counters, halt_rows, ver = _replay(
        book, np.ascontiguousarray(msgs.type, dtype=np.int8), np.ascontiguousarray(msgs.ts_ns),
        np.ascontiguousarray(msgs.order_id), np.ascontiguousarray(msgs.size),
        np.ascontiguousarray(msgs.price), np.ascontiguousarray(msgs.direction, dtype=np.int8),
        ob if verify else None, levels if verify else 0)
    trans = None
    if verify:
        trans = transitions(ob, np.ascontiguousarray(msgs.type, dtype=np.int8),
                            np.ascontiguousarray(msgs.size), np.ascontiguousarray(msgs.price),
                            np.ascontiguousarray(msgs.direction, dtype=np.int8), levels)
    elapsed = time.perf_counter() - t0

    is_trade = np.isin(msgs.type, (4, 5, 6))
    trades = np.empty(int(is_trade.sum()), dtype=TRADE_DTYPE)
    trades["ts_ns"] = msgs.ts_ns[is_trade]
    trades["order_id"] = msgs.order_id[is_trade]
    trades["price"] = msgs.price[is_trade]
    trades["qty"] = msgs.size[is_trade]
    trades["side"] = np.where(msgs.direction[is_trade] > 0, 0, 1)
    trades["type"] = msgs.type[is_trade]
    halts = np.empty(len(halt_rows), dtype=[("ts_ns", "<i8"), ("code", "<i8")])
    halts["ts_ns"] = msgs.ts_ns[halt_rows]
    halts["code"] = msgs.price[halt_rows]
    state = HALT_STATES.get(int(halts["code"][-1]), f"code {int(halts['code'][-1])}") \
        if len(halts) else "trading"
    types, counts = np.unique(msgs.type, return_counts=True)

    first = None
    agree_levels = None
    if ver is not None:
        agree_levels, f = ver
        if f is not None:
            k, side, level, bp, bs, fp, fs = f
            first = {"message": int(k) + 1, "index": int(k), "side": "bid" if side == 0 else "ask", "level": int(level),
                     "book": (int(bp), int(bs)), "file": (int(fp), int(fs)),
                     "type": int(msgs.type[k]), "order_id": int(msgs.order_id[k])}
    return LobsterResult(
        book=book, messages=len(msgs), counts={int(t): int(c) for t, c in zip(types, counts)},
        counters=dict(zip(COUNTER_NAMES, (int(x) for x in counters))), seed=seed, trades=trades,
        halts=halts, state=state, levels=levels if verify else None, elapsed_s=elapsed,
        agree_levels=agree_levels, first_disagreement=first, transitions=trans)


__all__ = ["LobsterMessages", "LobsterResult", "SEED_BASE", "TRADE_DTYPE", "read_messages",
           "read_orderbook", "replay_lobster", "seed_id", "seed_levels"]
