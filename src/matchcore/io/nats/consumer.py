"""Reading market data back from NATS JetStream: :class:`MarketDataConsumer` rebuilds top of
book, L2 levels and trade totals per symbol from batches, and :func:`consume` reads a stream
into one."""
from __future__ import annotations

import asyncio
import functools
import numbers
import time

import numpy as np

from matchcore._symfilter import LABEL as _LABEL     # book_label(); a locate is a u16
from matchcore._symfilter import plain_number, whole_number
from matchcore.io import book_label, symbol_name
from matchcore.io.nats.streams import (_check_stream_holds, _check_stream_name, _check_url,
                                       _huge_shown, _nats, _no_jetstream, _no_responders,
                                       _not_permitted, _refused, _transient_errors,
                                       display_url)
from matchcore.io.nats.wire import (DEFAULT_PREFIX, DEFAULT_STREAM, DEFAULT_URL, KIND_L2,
                                    KIND_NAMES, KIND_TOB, KIND_TRADE, KINDS, SESSION_HEADER,
                                    BatchError, check_prefix, decode_batch, subject_token,
                                    symbol_from_token, _unknown_kinds)
from matchcore.itch import volume_mask


class MarketDataConsumer:
    """Rebuilds market data per symbol from batches, in the order of each subject.

    ``apply(subject, payload)`` decodes one batch; per symbol (the subject's last token turned
    back into the symbol's own name by :func:`symbol_from_token`: ``c.tob["BRK.A"]``, not
    ``BRK_2EA``) it keeps the latest top of book
    (``tob[symbol] = (ts, bid, bid_qty, ask, ask_qty)``, 0 = empty side), every L2 level
    (``depth(symbol)``, the levels of the replay's book best first, rebuilt by setting each
    changed level to its new qty and order count and dropping it at qty 0) and trade totals
    (``trades[symbol] = [count, shares]``: every trade record counted, the shares of those that
    count towards volume, :func:`matchcore.itch.volume_mask`). The header's sequence number reveals batches that
    never arrived: their records are counted in ``missing[(kind, symbol)]`` and the jumps in
    ``gaps[(kind, symbol)]``. A malformed
    payload, or a batch whose header's kind is not its subject's, is counted in ``bad`` and
    changes nothing.

    Two locates of one symbol name are published to the same subjects, with one ``seq``
    sequence per subject; the header's ``locate`` tells their books apart. Such books are kept
    apart under ``NAME@locateN`` (:func:`matchcore.io.book_label`), as the replay summary and
    the Prometheus labels name them: when a second locate appears under a name, the first
    one's state moves from ``NAME`` to its label. ``locates[name]`` is the set of locates
    seen under each name in its latest session (another replay's locate under the name is
    that replay's book of it, not a second one). A batch whose ``seq`` is behind its subject's
    while no batch of its locate was taken from the subject is no redelivery: it is counted in
    ``out_of_sequence`` (a stream from a publisher that counted ``seq`` per locate).
    O(records) per batch (L2 in Python per record; top of book and trades vectorised).

    ``apply(..., headers=)`` takes the NATS headers of the message: a ``Matchcore-Session``
    other than the one the subject carried so far means another replay was published (its
    ``seq`` starts at 0 again): what was rebuilt from that subject (the symbol's top of book,
    L2 levels or trade totals, and its ``missing`` and ``gaps`` counts) is dropped and rebuilt
    from the new session's batches. ``sessions[(kind, symbol)]`` is the session each subject
    was last read in and ``session_changes`` counts the restarts. A batch of a session the
    subject moved on from (the stream read again into this consumer, from its first message)
    changes nothing and is left out, as a redelivery is. Batches without the header
    (publishers that predate it) form one session.

    >>> from matchcore.io.nats import KIND_TOB, WIRE_TOB, encode_batch
    >>> c = MarketDataConsumer()
    >>> rec = np.zeros(1, WIRE_TOB); rec[0] = (5, 100, 10, 101, 20)
    >>> c.apply("mc.tob.AAPL", encode_batch(KIND_TOB, 1, 0, rec))
    >>> c.tob["AAPL"]
    (5, 100, 10, 101, 20)
    """

    def __init__(self):
        # read by a name several books carry, each raises naming their labels (_Books)
        self.tob: dict[str, tuple] = _Books(self._refuse_shared,
                                            functools.partial(self._sole_locate, "tob"))
        self.levels: dict[str, dict] = _Books(self._refuse_shared,
                                              functools.partial(self._sole_locate, "l2"))
        self.trades: dict[str, list] = _Books(self._refuse_shared,
                                              functools.partial(self._sole_locate, "trade"))
        self.missing: dict[tuple[str, str], int] = {}
        self.gaps: dict[tuple[str, str], int] = {}
        self.records = {k: 0 for k in KINDS}
        self.batches = 0
        self.bad = 0
        self.sessions: dict[tuple[str, str], str | None] = {}
        self.session_changes = 0
        # (kind, symbol) -> the sessions the subject moved on from
        self._replaced: dict[tuple[str, str], set] = {}
        self.resubscribes = 0           # consume(): pull consumers made again after an error
        self.timed_out = False          # consume(): timeout ended a read before the stream's end
        self.last_error: str | None = None
        self.locates: dict[str, set[int]] = {}
        self._locs: dict[tuple, set[int]] = {}      # (name, session) -> locates seen
        self._labels: dict[str, set[str]] = {}      # name -> NAME@locateN keys used
        self._next: dict[tuple[int, str], int] = {}
        self._applied: dict[tuple[int, str], set[int]] = {}   # subject -> locates taken from it
        self.out_of_sequence = 0
        # name -> the locates to keep, for names selected by book label (select())
        self._only: dict[str, set[int]] = {}
        # (subject, locate) -> [first seq, end seq) of the batches of a book select() left
        # out, while it stays left out; moved to _catchup when a read selects it again
        self._left: dict[tuple, list[int]] = {}
        self._catchup: dict[tuple, list[int]] = {}

    def select(self, symbols) -> list[str]:
        """Keep, of a name selected by book label (``NAME@locateN``), only those books: the
        name's other books' batches are still read for the sequence check, and left out.
        Returns the names to subscribe to (what :func:`consume` does with ``symbols``).
        A number written with leading zeros (``"007"``) also selects its plain form (``"7"``,
        the name a locate published without one carries), as the replay's ``symbols=`` reads
        it. A book an earlier selection left out and this one takes starts unseen: its batches
        are applied when read again, not skipped as redeliveries. A book has one key: when a
        selection names by label a book kept under its name, or by its name one kept under
        its label, its state moves to the new key (reads by it show the whole book).

        >>> MarketDataConsumer().select(["AAPL@locate2", "MSFT"])
        ['AAPL', 'MSFT']
        """
        names, only, whole = _selection(symbols)
        was, self._only = self._only, {n: locs for n, locs in only.items() if n not in whole}
        # a book has one key: one that a name's whole selection keeps under the name and a
        # label selection under its label moves when the selection names it the other way
        # (its state stayed under the old key, new batches went to the new one)
        for name in set(was) ^ set(self._only):
            for kname, d in (("tob", self.tob), ("l2", self.levels), ("trade", self.trades)):
                locs = self._locs.get((name, self.sessions.get((kname, name))), ())
                if len(locs) != 1:
                    continue            # none seen, or several: kept under labels either way
                label = book_label(name, next(iter(locs)))
                old, new = (label, name) if name in was else (name, label)
                if d._holds(old):
                    d[new] = d.pop(old)
                    if new == label:
                        self._labels.setdefault(name, set()).add(label)
        # the books this read selects that an earlier one left out start unseen: their
        # batches, behind their subjects' next seq, were skipped as redeliveries
        for k in [k for k in self._left if self._selected(k[0][1], k[1])]:
            lo, hi = self._left.pop(k)
            was = self._catchup.get(k)
            self._catchup[k] = [lo, hi] if was is None else [min(lo, was[0]), max(hi, was[1])]
        return list(names)

    def _selected(self, symbol: str, locate: int) -> bool:
        only = self._only.get(symbol)
        return only is None or locate in only

    def _book(self, symbol: str, locate: int, session) -> str | None:
        # the key of the book a batch belongs to: its symbol name, or NAME@locateN once a
        # second locate has been seen under that name in the batch's session (the first
        # one's state of that session moves there) or when the name was selected by label;
        # None for a book select() leaves out. Per session: another replay's locate under
        # the name is another day's book of it, not a second one.
        locs = self._locs.setdefault((symbol, session), set())
        if not locs:
            self.locates[symbol] = locs          # the name's latest session
        if locate not in locs:
            locs.add(locate)
            if len(locs) == 2:
                first = book_label(symbol, min(locs - {locate}))
                for kname, d in (("tob", self.tob), ("l2", self.levels),
                                 ("trade", self.trades)):
                    if d._holds(symbol) and self.sessions.get((kname, symbol)) == session:
                        d[first] = d.pop(symbol)
                        self._labels.setdefault(symbol, set()).add(first)
        only = self._only.get(symbol)
        if only is not None:
            key = book_label(symbol, locate) if locate in only else None
        else:
            key = symbol if len(locs) == 1 else book_label(symbol, locate)
        if key is not None and key != symbol:
            self._labels.setdefault(symbol, set()).add(key)
        return key

    def apply(self, subject: str, payload: bytes, headers=None) -> str | None:
        """Apply one batch received on ``subject`` (with its NATS ``headers``, a dict, if
        any). Returns None when it went into the books, else why it was left out: a malformed
        batch, a redelivery, a batch out of sequence or one of a book :meth:`select` leaves
        out. O(records)."""
        try:
            kind, locate, seq, rec = decode_batch(payload)
        except BatchError as e:
            self.bad += 1
            return f"malformed batch ({e})"
        why = kind_mismatch(subject, kind)
        if why is not None:
            self.bad += 1
            return f"malformed batch ({why})"
        parts = subject.split(".")
        symbol = symbol_from_token(parts[-1]) if len(parts) >= 3 else str(locate)
        key = (kind, symbol)
        mk = (KIND_NAMES[kind], symbol)
        session = headers.get(SESSION_HEADER) if headers else None
        if mk in self.sessions and self.sessions[mk] != session:
            replaced = self._replaced.setdefault(mk, set())
            if session in replaced:
                # read again into this consumer (a stream of several replays read from its
                # first message once more): the subject moved on from that session in stream
                # order, and taking it for a new one put its books back until the newer
                # session's batches came again
                return (f"a batch of session {session!r}, which session "
                        f"{self.sessions[mk]!r} replaced on this subject")
            replaced.add(self.sessions[mk])
            self._restart(kind, symbol)
        self.sessions[mk] = session
        expect = self._next.get(key, 0)
        catchup = self._catchup.get((key, locate)) if seq < expect else None
        if catchup is not None and catchup[0] <= seq < catchup[1]:
            # a batch of a book an earlier read left out, and this one selects: never applied
            catchup[0] = seq + len(rec)
            if catchup[0] >= catchup[1]:
                del self._catchup[(key, locate)]
        elif seq > expect:
            self.missing[mk] = self.missing.get(mk, 0) + seq - expect
            self.gaps[mk] = self.gaps.get(mk, 0) + 1
        elif seq < expect:           # a batch seen before (redelivery): already applied
            if locate not in self._applied.get(key, ()):
                # not a redelivery: no batch of its locate was taken from this subject (a
                # publisher that counted seq per locate on a subject two locates share)
                self.out_of_sequence += 1
                return (f"out of sequence: seq {seq} is behind the subject's next, {expect}, "
                        f"and no batch of locate {locate} was read from the subject")
            return f"a redelivery: seq {seq} is behind the subject's next, {expect}"
        if catchup is None:
            self._next[key] = seq + len(rec)
            self._applied.setdefault(key, set()).add(locate)
        book = self._book(symbol, locate, session)
        if book is None:
            left = self._left.setdefault((key, locate), [seq, seq])
            left[1] = seq + len(rec)
            return f"book {book_label(symbol, locate)} not selected"
        self.batches += 1
        self.records[KIND_NAMES[kind]] += len(rec)
        if not len(rec):
            return None
        if kind == KIND_TOB:
            last = rec[-1]
            self.tob[book] = (int(last["ts"]), int(last["bid"]), int(last["bid_qty"]),
                              int(last["ask"]), int(last["ask_qty"]))
        elif kind == KIND_TRADE:
            acc = self.trades.setdefault(book, [0, 0])
            acc[0] += len(rec)
            acc[1] += int(rec["shares"][volume_mask(rec)].sum())
        else:
            levels = self.levels.setdefault(book, {})
            for side, price, qty, orders in zip(rec["side"].tolist(), rec["price"].tolist(),
                                                rec["qty"].tolist(), rec["orders"].tolist()):
                if qty:
                    levels[(side, price)] = (qty, orders)
                else:
                    levels.pop((side, price), None)
        return None

    def _restart(self, kind: int, symbol: str) -> None:
        # each subject holds one kind of one symbol name: only that part of the state is
        # stale, for every book (locate) published under the name
        self.session_changes += 1
        self._next.pop((kind, symbol), None)
        self._applied.pop((kind, symbol), None)
        for d in (self._left, self._catchup):
            for k in [k for k in d if k[0] == (kind, symbol)]:
                del d[k]
        self.missing.pop((KIND_NAMES[kind], symbol), None)
        self.gaps.pop((KIND_NAMES[kind], symbol), None)
        d = {KIND_TOB: self.tob, KIND_TRADE: self.trades, KIND_L2: self.levels}[kind]
        d.pop(symbol, None)
        for key in self._labels.get(symbol, ()):
            d.pop(key, None)

    def depth(self, symbol: str, n: int | None = None):
        """``(bids, asks)``: lists of (price, qty, orders), best first (bids descending, asks
        ascending), from the L2 records of the book ``symbol`` (a name, or ``NAME@locateN``
        for a name several locates carry, N with or without leading zeros: the bare name of
        such books raises ``ValueError`` naming their labels, as ``tob[name]``,
        ``levels[name]`` and ``trades[name]`` do; the label of a name's only book reads that
        book, kept under the name; a name no book carries has no levels), at
        most ``n`` levels per side (None: all; an int >= 0, ``ValueError`` otherwise). A
        ``symbol`` that is not a str raises ``TypeError``, as ``tob[7]`` does: names are
        strings (the book of a locate published without a name is ``"7"``).
        O(levels log levels)."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                              or n < 0):
            # a negative n sliced from the end: every level but the worst, taken for the book
            raise ValueError(f"n must be an int >= 0 or None, got {n!r}")
        _check_read_name(symbol)
        # a key as stored first, as [] reads it
        symbol = _held(self.levels, symbol) or _plain_label(symbol)
        if not self.levels._holds(symbol):
            # a name several books carry read as an empty book: their levels are under
            # their labels
            self._refuse_shared(symbol)
        book = dict.get(self.levels, symbol, {})
        bids = sorted(((p, q, o) for (s, p), (q, o) in book.items() if s == b"B"), reverse=True)
        asks = sorted((p, q, o) for (s, p), (q, o) in book.items() if s == b"S")
        return (bids[:n], asks[:n]) if n is not None else (bids, asks)

    def symbols(self) -> list[str]:
        """Every book seen, sorted: its symbol name, or ``NAME@locateN`` for each book of a
        name that several locates were published under."""
        return sorted(set(self.tob) | set(self.levels) | set(self.trades))

    def _sole_locate(self, kname: str, name: str) -> int | None:
        # The locate of the one book kept under the bare ``name`` in kind ``kname``: the only
        # one seen under the name in the session that kind's subject was last read in (what
        # _book() keys by the name); None when several (kept under labels) or the name was
        # selected by label
        if name in self._only:
            return None
        locs = self._locs.get((name, self.sessions.get((kname, name))), ())
        return next(iter(locs)) if len(locs) == 1 else None

    def _refuse_shared(self, symbol) -> None:
        # ValueError naming the labels when ``symbol`` is a name whose books are kept under
        # NAME@locateN (as a replay's book() refuses such a name), or that a read selected by
        # label (select()); nothing otherwise
        labels = [k for k in self._labels.get(symbol, ())
                  if self.tob._holds(k) or self.levels._holds(k) or self.trades._holds(k)]
        if labels:
            locs = sorted(int(_LABEL.fullmatch(k).group(2)) for k in labels)
            if symbol in self._only:
                # kept under the label the read selected it by, however many locates carry
                # the name: "carried by locates 4" read as a name several books share
                several = len(locs) > 1
                raise ValueError(
                    f"symbol {symbol!r} was selected by its book label{'s' if several else ''} "
                    f"{', '.join(book_label(symbol, L) for L in locs)}: read it by "
                    f"{'one of them' if several else 'that label'}")
            raise ValueError(
                f"symbol {symbol!r} is carried by locates {', '.join(map(str, locs))}: ask for "
                f"one of {', '.join(book_label(symbol, L) for L in locs)}")


def _selection(symbols):
    # what select() makes of ``symbols``, changing nothing: the names to subscribe to (a
    # dict, in order), the locates to keep of each name selected by label, and the names
    # selected whole
    names, only, whole = {}, {}, set()
    for s in symbols:
        # without surrounding spaces, as a subject token and the replay's symbols= read
        # it: " AAPL@locate2" kept its label under " AAPL", a name no batch carries
        s = _symbol_text(s).strip()
        m = _LABEL.fullmatch(s)
        name = m.group(1) if m else s
        if m:
            only.setdefault(name, set()).add(int(m.group(2)))
            names[name] = None
            continue
        # a number in every form, as the replay's symbols= takes it (symbol_filter):
        # "007" selects the name "007" and the book of locate 7, published as "7"
        for form in (name, plain_number(name)):
            whole.add(form)
            names[form] = None
    return names, only, whole


class _Books(dict):
    """A consumer's per-book dict (``tob``, ``levels``, ``trades``): a plain dict, but a name
    whose books are kept under their labels raises ``ValueError`` naming them, rather than a
    bare ``KeyError``, a label written with leading zeros reads its book, so does a name or
    label with surrounding spaces (as :func:`matchcore.io.symbol_name` names books), and a
    key that is not a str raises ``TypeError``. ``get`` and ``in`` look up as ``[]`` does (as a Mapping's):
    the default and False only for a str that names no book."""

    # the keys as stored, without the reader's label resolution or refusals
    _holds = dict.__contains__

    def __init__(self, refuse_shared, sole=None):
        super().__init__()
        self._refuse_shared = refuse_shared
        # name -> the locate of the one book kept under it, else None (_held)
        self._sole = sole

    def __missing__(self, key):
        _check_read_name(key)
        held = _held(self, key)
        if held is not None and held != key:
            return self[held]
        self._refuse_shared(_plain_label(key))
        raise KeyError(key)

    # dict's own skipped __missing__: get("X@locate04") gave None and "X@locate04" in it
    # False where [] found the book; get(7) and 7 in it took a key [] refuses
    def __contains__(self, key) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


def _check_read_name(symbol) -> None:
    # a book is kept under a str: depth(7) read an empty book and tob[7] raised a bare
    # KeyError, while consume(symbols=[7]) keeps locate 7's book under the name "7"
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str (a name or NAME@locateN), got "
                        f"{type(symbol).__name__} {symbol!r}")


def _plain_label(key):
    # a book label written with leading zeros (NAME@locate007) as the consumer keeps it
    # (NAME@locate7), as select() and a replay's book() read it, and a name without
    # surrounding spaces (symbol_name), as books are named; anything else unchanged
    if not isinstance(key, str):
        return key
    m = _LABEL.fullmatch(key)
    return book_label(m.group(1), int(m.group(2))) if m else symbol_name(key)


def _held(d, key):
    # the key under which the _Books ``d`` holds the book ``key`` names, else None: as
    # stored, then as _plain_label() writes it, then a number written with leading zeros
    # ("007") in its plain form ("7", the book of a locate published without a name), as
    # select() and a replay's book() take it once no book carries it as a name, then a label
    # (NAME@locateN) of a name's only book, kept under the name: as a replay's book() and
    # consume(symbols=) take that label, where it read as a book with no levels
    if not isinstance(key, str):
        return None
    plain = _plain_label(key)
    for k in (key, plain, plain_number(plain)):
        if d._holds(k):
            return k
    m = _LABEL.fullmatch(plain)
    if m and d._sole is not None and d._holds(m.group(1)) \
            and d._sole(m.group(1)) == int(m.group(2)):
        return m.group(1)
    return None


def kind_mismatch(subject: str, kind: int) -> str | None:
    """Why a batch of ``kind`` (its header's) does not belong on ``subject``
    (``<prefix>.<kind>.<symbol>``) when the subject names another kind, else None: one of the
    two is wrong, and the subject's sequence is not the batch's.

    >>> kind_mismatch("mc.l2.AAPL", KIND_TOB)
    "its header's kind tob is not its subject's l2"
    """
    parts = subject.split(".")
    if len(parts) >= 3 and KINDS.get(parts[-2]) != kind:
        return f"its header's kind {KIND_NAMES[kind]} is not its subject's {parts[-2]}"
    return None


def filter_subjects(prefix: str = DEFAULT_PREFIX, symbols=None, kinds=None) -> list[str]:
    """The subjects that select ``symbols`` (names) and ``kinds`` (None = all; an empty
    one, or a blank name, is refused with ``ValueError``) with wildcards.

    >>> filter_subjects("mc", ["AAPL"], ["tob", "l2"])
    ['mc.tob.AAPL', 'mc.l2.AAPL']
    >>> filter_subjects("mc")
    ['mc.*.*']

    Always exactly ``<prefix>.<kind>.<symbol>``: ``mc.>`` also took the subjects of a
    publisher under a longer prefix in the same stream (``mc.eu.tob.AAPL``) for ``mc``'s own.
    """
    check_prefix(prefix)
    for what, names in (("symbols", symbols), ("kinds", kinds)):
        # a str is iterable: symbols="AAPL" selected the symbols A, A, P and L
        if isinstance(names, (str, bytes)):
            raise TypeError(f"{what} must be a list of names, not {type(names).__name__} "
                            f"{names!r} (write [{names!r}])")
    symbols, kinds = _listed(symbols), _listed(kinds)
    for what, names in (("symbols", symbols), ("kinds", kinds)):
        # an empty list made no subject filter, which selects everything
        if names is not None and not names:
            raise ValueError(f"{what} is empty: it selects nothing (None selects every "
                             f"{what[:-1]})")
    for raw in symbols or ():
        given = _symbol_text(raw)
        # a blank name read the subjects of the name "" (token _), which no replay
        # publishes: nothing, as from an empty stream (the replay's symbols= refuses it)
        if not str(given).strip():
            raise ValueError(f"symbols holds an empty name ({given!r}): it selects no symbol")
        # a locate is a uint16, as the replay's symbols= refuses: an int outside it read the
        # subjects of a name no replay publishes, a label outside it the name's subjects for
        # a book no batch header can name, an empty read either way (a string of digits may
        # be a name: "70000" is read as one)
        number = whole_number(raw) if not isinstance(raw, str) else None
        m = _LABEL.fullmatch(str(given).strip())
        if number is not None and not 0 <= number <= 0xFFFF:
            raise ValueError(f"symbols holds {number!r}, outside 0..65535 (an ITCH stock "
                             f"locate is a uint16): it selects no book")
        if m and int(m.group(2)) > 0xFFFF:
            raise ValueError(f"symbols holds {given!r}, a book label of locate "
                             f"{int(m.group(2))}, outside 0..65535 (an ITCH stock locate is a "
                             f"uint16): it selects no book")
    if kinds is not None:
        # (a kind that is not a str failed in sorted() or set(), in words naming neither)
        bad = _unknown_kinds(kinds)
        if bad:
            raise ValueError(f"unknown kinds {bad}: choose from {sorted(KINDS)}")
    ks = list(kinds) if kinds is not None else None
    ss = [subject_token(_symbol_text(s)) for s in symbols] if symbols is not None else None
    if ks is None and ss is None:
        return [f"{prefix}.*.*"]
    return [f"{prefix}.{k}.{s}" for k in (ks or ["*"]) for s in (ss or ["*"])]


def _symbol_text(given) -> str:
    # a name (str) or a number (an int: the name of a locate published without one), as the
    # replay's symbols= takes them; bytes, a float, None or a bool was read as its str()
    # (b'AAPL', 1.0, None), the subjects of a name no replay publishes: a read of nothing
    if isinstance(given, str):
        return given
    number = whole_number(given)
    if number is None:
        raise TypeError(f"symbols holds {given!r} ({type(given).__name__}): a name is a str, "
                        f"a number an int or a string of digits")
    return str(number)


def _listed(names):
    # read once: a generator of kinds was used up by the check for unknown ones, and the
    # subjects were then made from nothing, which selects every kind
    return names if names is None or isinstance(names, (str, bytes)) else list(names)


# The most bytes of messages (of the broker's max_payload) a read has delivered and not yet
# acknowledged: well under what the server queues for a client (64 MiB by default) before
# it drops the connection as a slow consumer, and what the client holds for a subscription
# (256 MiB) before it drops messages
_FETCH_BYTES = 16 << 20
# Without follow, a read gives up after failing this long without a break (s)
_GIVE_UP_S = 10.0
# The longest a read waits for its connection (s), unless its timeout ends first
_CONNECT_S = 5.0
# A follow read without a delivery for this long asks its consumer whether it delivered
# more than arrived (s)
_QUIET_CHECK_S = 1.0


# The most filter subjects a read's pull consumer is made with: the server takes time growing
# with the square of their number to make it (300: 0.07 s; 3,000: 3.5 s; 60,000, 20,000
# symbols of 3 kinds: past any timeout). Above it the read takes the kinds' wildcard subjects
# and keeps the selected subjects' batches itself (_consume_async(keep=)).
_MAX_FILTER_SUBJECTS = 300


async def _consume_async(url, subjects, stream, consumer, idle, follow, on_batch, deadline,
                         stop, timeout=None, keep=None, select=None):
    nats = _nats()
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import ServiceUnavailableError

    transient = _transient_errors()
    errors = []
    refusals = []       # the broker's permission refusals among them (_raise_if_refused)

    async def on_error(e):          # keep the client's errors for the message, do not log them
        # the last one only (the connection's message names it): a broker away for hours
        # reports a refused reconnection 4 times a second
        errors[:] = [e]
        if _refused([e]) is not None:
            # apart, and checked at every empty fetch: the whole list of errors was read
            # there 5 times a second, each read longer while the broker stayed away
            refusals.append(e)

    # the read's timeout bounds its connection too: timeout=1 waited up to 5 s here
    left = _CONNECT_S if deadline is None else max(deadline - time.monotonic(), 0.001)
    try:
        nc = await asyncio.wait_for(nats.connect(servers=[url], connect_timeout=min(2, left),
                                                 max_reconnect_attempts=-1,
                                                 reconnect_time_wait=0.25, error_cb=on_error),
                                    min(_CONNECT_S, left))
    except asyncio.TimeoutError:
        # the client's timeout has no words of its own: "TimeoutError: " said nothing
        why = (f"{type(errors[-1]).__name__}: {str(errors[-1]) or 'no answer'}" if errors
               else "no answer")
        when = f" before the timeout ({float(timeout):g} s)" if left < _CONNECT_S else ""
        raise ConnectionError(f"cannot connect to NATS at {display_url(url)}{when}: "
                              f"{why}") from None
    async def before_deadline(request):
        # A request of the read's start (the stream's lookup, the consumer's creation), bounded
        # by what is left of the read's timeout, as the connection is: each waited out the
        # client's own 5 s, so timeout=1 ended after 5 s, also when the broker had refused
        # the request at once
        if deadline is None:
            return await request
        try:
            return await asyncio.wait_for(request, max(deadline - time.monotonic(), 0.001))
        except asyncio.TimeoutError:
            if time.monotonic() < deadline:
                raise               # the client's own timeout, before the read's
            raise _StartCut() from None

    try:
        js = nc.jetstream()
        try:
            # a missing stream fails here, at once
            info = await before_deadline(js.stream_info(stream))
        except ServiceUnavailableError:
            raise _no_jetstream(url) from None
        except _StartCut:
            # the timeout ended the read before anything was read: the broker's refusal
            # when it made one, else a read cut short, as a timeout ends one later
            _raise_if_refused(refusals, stream, url)
            consumer.timed_out = True
            return
        except asyncio.TimeoutError:
            _raise_if_refused(refusals, stream, url)
            raise
        _check_stream_holds(info.config, stream, url, subjects if keep is None else keep)
        if select is not None:          # the consumer's selection, now that the read begins
            select()
        # One pull consumer over every selected subject (filter_subjects): the stream hands it
        # their messages in stream order, so each subject's batches keep their order, and a
        # fetch returns as soon as any of them has a message. (A consumer per subject, fetched
        # in turn with a 0.2 s wait each, made a live message wait up to subjects x 0.2 s and
        # an --idle read stop that much late: 5 s with 8 symbols x 3 kinds.)
        # Duplicates would overlap, which the server refuses for a consumer's filters.
        # With ``keep`` (the selected subjects, too many to filter on: _MAX_FILTER_SUBJECTS)
        # ``subjects`` are the kinds' wildcards (<prefix>.<kind>.*, <prefix>.*.*), and only
        # the batches of a selected symbol token are applied, shown and count as a message
        # for ``idle``: what a consumer filtering on ``keep`` would have been handed, in the
        # same order.
        tokens = None if keep is None else frozenset(s.rpartition(".")[2] for s in keep)

        def lost_connection() -> ConnectionError:
            # a read without follow giving up with the broker away: said so, with the
            # client's own reason for not reconnecting (a refused connection, ...)
            why = (f": {type(errors[-1]).__name__}: {str(errors[-1]) or 'no answer'}"
                   if errors else "")
            consumer.last_error = (f"lost the connection to NATS at {display_url(url)} and "
                                   f"could not connect again within {_GIVE_UP_S:g} s{why}")
            return ConnectionError(consumer.last_error)
        subjects = list(dict.fromkeys(subjects))
        last_seq = None        # stream sequence of the last message applied
        next_cseq = 1          # the consumer sequence of the next delivery
        created = None         # creation time of the stream the subscription read
        last_ack = None        # the reply subject of the last delivery acknowledged
        acked_again = None     # the last one sent again (below)

        async def subscribe():
            nonlocal last_seq, created, next_cseq, owed, tail, last_ack, behind
            info = await js.stream_info(stream)
            if created == info.created and last_seq is not None:
                # the same stream, our consumer lost: go on after what was applied
                cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                     opt_start_seq=last_seq + 1,
                                     ack_policy=AckPolicy.ALL, inactive_threshold=60.0,
                                     max_ack_pending=fetch_n)
            else:
                # a stream made again (a broker restarted without its store): all of it is new,
                # and the deliveries owed were the old one's
                last_seq = owed = tail = None
                cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.ALL,
                                     inactive_threshold=60.0, max_ack_pending=fetch_n)
            if len(subjects) > 1:
                cfg.filter_subjects = subjects
            created = info.created
            next_cseq = 1              # a new consumer's first delivery
            last_ack = behind = None   # the old consumer's
            return await js.pull_subscribe(subjects[0], durable=None, stream=stream, config=cfg)

        # Messages per fetch, and unacknowledged messages the server delivers at most
        # (max_ack_pending; each fetch acknowledges its last): at most 512, and at most
        # _FETCH_BYTES of the largest the broker takes. Unbounded (1,000 by default, and the
        # fetches a short wait cuts off leave theirs in flight), messages of 1 MiB (its
        # default max_payload) overflowed the client's pending bytes per subscription
        # (256 MiB) or the server's for the connection: messages dropped, sequence gaps for
        # records the stream holds.
        fetch_n = max(1, min(512, _FETCH_BYTES // max(int(nc.max_payload or 1), 1)))
        try:
            # None while it is broken and waiting to be made again
            sub = await before_deadline(subscribe())
        except _StartCut:
            _raise_if_refused(refusals, stream, url)
            consumer.timed_out = True
            return
        except asyncio.TimeoutError:
            # the consumer's creation refused where the stream's lookup was not
            _raise_if_refused(refusals, stream, url)
            raise
        retry_at, backoff = 0.0, 0.05
        failing_since = None
        last_msg = time.monotonic()
        # A follow read at its timeout: the stream sequence of the consumer's last delivery
        # then, which the read takes in before it ends (deliveries lost on the way at the end
        # of the read are read again, as at the stream's end or the idle time's)
        tail = None
        # Deliveries found lost and not read again yet: the stream sequence up to which the
        # new subscription has to read (a timeout passing meanwhile waits for them)
        owed = None
        # When a delivery last arrived or the consumer was last asked what it delivered: a
        # follow read asks it after _QUIET_CHECK_S without one (below)
        heard = time.monotonic()
        # The next delivery expected when the consumer last said it had delivered more than
        # arrived, None when it did not: lost only if a fetch after that still lacks them
        behind = None
        while True:
            if stop is not None and stop.is_set():
                break
            now = time.monotonic()
            if deadline is not None and now > deadline:
                if not follow:
                    # the stream's end was the goal: what was read is not all
                    consumer.timed_out = True
                    break
                if tail is None:
                    tail = owed
                if sub is None and tail is None:
                    break       # broken at the timeout: nothing delivered to wait for
                if tail is not None and last_seq is not None and last_seq >= tail:
                    break
                if now > deadline + _GIVE_UP_S:
                    # the deliveries made before the timeout could not be read again: the
                    # books lack them
                    consumer.timed_out = True
                    break
            got_any = False
            # a failing request counts from its sending: one sent as the broker left waited
            # out the client's 5 s before it failed, and the give-up came 15 s after it left
            began = time.monotonic()
            if not follow and not nc.is_connected:
                # The broker away: every request waits out the client's 5 s on the dead
                # connection, and the read gave up after 15 s with "nats: timeout", naming
                # neither the lost connection nor the client's reason. Wait for the client's
                # reconnection instead, as long as a failing read is given.
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since > _GIVE_UP_S:
                    raise lost_connection()
                await asyncio.sleep(0.05)
                continue
            fetching = False        # a fetch, not a JetStream API request, raised (below)
            try:
                if sub is not None and tail is None and deadline is not None \
                        and time.monotonic() > deadline:
                    if not nc.is_connected:
                        # no answer to come (each request waits out the client's 5 s), and
                        # nothing to read again before the broker is back
                        break
                    info = await sub.consumer_info()
                    if info.delivered.consumer_seq < next_cseq:
                        break               # every delivery arrived
                    tail = info.delivered.stream_seq
                if sub is None and time.monotonic() >= retry_at:
                    sub = await subscribe()
                    consumer.resubscribes += 1
                    backoff = 0.05
                if sub is None:
                    await asyncio.sleep(min(max(retry_at - time.monotonic(), 0.0), 0.2))
                else:
                    try:
                        fetching = True
                        msgs = await sub.fetch(batch=fetch_n, timeout=0.2)
                        fetching = False
                    except (NatsTimeout, asyncio.TimeoutError):   # the client raises either
                        fetching = False
                        msgs = []
                        # a fetch the broker refuses this user is never answered: taken for a
                        # stream with nothing to deliver yet, the read went on for ever
                        _raise_if_refused(refusals, stream, url)
                    lost = None
                    # A whole fetch lost on the way (a connection dropped with it in flight)
                    # leaves the consumer with as many unacknowledged deliveries as it may
                    # have: it delivers nothing more until the broker's ack wait (30 s) runs
                    # out, and no later delivery shows the jump. A follow read asks after a
                    # quiet second rather than stalling that long.
                    # (not while the client reconnects: the request would wait out the
                    # client's 5 s for an answer, and a follow read its idle time or timeout)
                    ending = not follow or nc.is_connected and (
                        tail is not None or behind is not None
                        or (idle is not None and time.monotonic() - last_msg > idle)
                        or time.monotonic() - heard > _QUIET_CHECK_S)
                    if not msgs and ending:
                        # the stream's end, or the idle time or timeout of a follow read
                        # over: the end of the read, unless the consumer delivered more than
                        # arrived (lost on the way: no later delivery shows the jump; a follow
                        # read ended by idle or timeout without them)
                        info = await sub.consumer_info()
                        heard = time.monotonic()
                        if info.delivered.consumer_seq >= next_cseq:
                            if behind == next_cseq:
                                # asked again after a fetch, and still none of them came
                                lost = (next_cseq, info.delivered.consumer_seq + 1)
                                owed = max(owed or 0, info.delivered.stream_seq)
                                behind = None
                            else:
                                # Delivered after the fetch gave up waiting (this process
                                # stopped or starved longer than its wait: Ctrl-Z, a loaded
                                # machine), they wait for the next fetch, which takes them
                                # first: taken for lost, the read resubscribed and reported
                                # a dropped connection that never was
                                behind = next_cseq
                            last_msg = time.monotonic()     # idle counts from the new read
                        else:
                            behind = None
                            if info.num_ack_pending and last_ack is not None \
                                    and last_ack != acked_again:
                                # Every delivery arrived and was acknowledged, yet some are
                                # unacknowledged: the acknowledgement was lost on the way (a
                                # broker restarting, a connection dropped as it went out). At
                                # its limit of them the consumer delivers nothing more until
                                # its ack wait (30 s) runs out: sent again (acknowledging
                                # twice is harmless)
                                await nc.publish(last_ack)
                                # once per acknowledgement: a follow read's idle time, counted
                                # again from here (one shorter than the quiet check ended the
                                # read before the consumer delivered again), is not put off
                                # for good by a consumer slow to record it
                                acked_again = last_ack
                                last_msg = time.monotonic()
                            if not follow and info.num_pending == 0:
                                break
                    for i, m in enumerate(msgs):
                        # the consumer's delivery sequence, one up per delivery: a jump is
                        # messages delivered and never received (a connection the server
                        # dropped mid-fetch), which acknowledging a later one would give up
                        cseq = m.metadata.sequence.consumer
                        if cseq != next_cseq:
                            # (those after the jump were delivered too, and are read again)
                            owed = max(owed or 0, msgs[-1].metadata.sequence.stream)
                            lost, msgs = (next_cseq, cseq), msgs[:i]
                            break
                        next_cseq += 1
                        if tokens is not None and m.subject.rpartition(".")[2] not in tokens:
                            continue
                        got_any = True
                        consumer.apply(m.subject, m.data, m.headers)
                        if on_batch is not None:
                            on_batch(m.subject, m.data)
                    if msgs:
                        heard = time.monotonic()
                        last_seq = msgs[-1].metadata.sequence.stream
                        if owed is not None and last_seq >= owed:
                            owed = None
                        await msgs[-1].ack()
                        last_ack = msgs[-1].reply
                    if lost is not None:
                        # read again after the last message applied, by a new subscription
                        consumer.last_error = (
                            f"deliveries {lost[0]:,} to {lost[1] - 1:,} of the pull consumer "
                            f"never arrived (the connection dropped): read again after stream "
                            f"message {last_seq or 0:,}")
                        try:
                            await sub.unsubscribe()
                        except Exception:
                            pass
                        sub, retry_at = None, 0.0
                    failing_since = None
            except transient as e:
                # broker restarting, its store lost, our consumer expired: keep what was
                # received and try again with a growing pause
                # (nothing answering, in the client's words "code=None err_code=None
                # description='None'", said nothing: a fetch's consumer gone, a JetStream
                # request's broker back without JetStream)
                consumer.last_error = f"{type(e).__name__}: {e}"
                if _no_responders(e):
                    consumer.last_error = (
                        f"ServiceUnavailableError: nothing answered the read's fetch at "
                        f"{display_url(url)}: JetStream down (a broker restarting, or one "
                        f"without it), or its pull consumer gone (deleted, or expired after a "
                        f"minute without a fetch)" if fetching
                        else f"ServiceUnavailableError: no JetStream answered at "
                             f"{display_url(url)} (a broker restarting, or one without it)")
                now = time.monotonic()
                failing_since = began if failing_since is None else failing_since
                if not follow and now - failing_since > _GIVE_UP_S:
                    if not nc.is_connected:
                        raise lost_connection() from e
                    if _no_responders(e) and not fetching:
                        # as a broker without JetStream is named at the start
                        raise _no_jetstream(url) from e
                    raise
                if sub is not None:
                    try:
                        await sub.unsubscribe()
                    except Exception:
                        pass
                backoff = min(2 * backoff, 2.0)
                sub = None
                retry_at = now + backoff
            if got_any:
                last_msg = time.monotonic()
            elif follow and idle is not None and time.monotonic() - last_msg > idle:
                break
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
    finally:
        try:
            await nc.close()
        except OSError:
            # a broker gone for good: the client flushes the requests it held for it into
            # the dead connection and raises ConnectionResetError, in place of the read's own
            # end (what was received, or the error that ended it); its tasks are stopped by
            # then, and nothing is left to close
            pass


class _StartCut(Exception):
    # the read's timeout passed during a request of its start (_consume_async)
    pass


def _raise_if_refused(refusals, stream: str, url: str) -> None:
    # a request that timed out because the broker refused it this user: said so, in the
    # client's words naming the subject refused
    refusal = _refused(refusals)
    if refusal is not None:
        raise _not_permitted(stream, url, refusal) from None


def consume(url: str = DEFAULT_URL, *, symbols=None, kinds=None, stream: str = DEFAULT_STREAM,
            prefix: str = DEFAULT_PREFIX, follow: bool = False, idle: float | None = None,
            timeout: float | None = None, on_batch=None, stop=None,
            consumer: MarketDataConsumer | None = None) -> MarketDataConsumer:
    """Read the stream from its first message into a :class:`MarketDataConsumer` and return it.

    ``symbols`` / ``kinds`` filter by subject (``filter_subjects``; None reads every one, an
    empty one is refused with ``ValueError`` before anything connects, and a symbol that is
    neither a name (str) nor a number (int) with ``TypeError``; so is a ``prefix`` or
    ``stream`` that cannot name one, and a ``url`` that is not a str, of a scheme the
    client does not take or that it cannot read (no host, a port that is not a number), as
    :class:`NatsPublisher` refuses them); a symbol given as a book label ``NAME@locateN`` reads the name's subjects and keeps only that book
    (:meth:`MarketDataConsumer.select`). More than 300 selected subjects (100 symbols of
    every kind), which the server makes a filtered consumer of only slowly, are read through
    the kinds' wildcard subjects, the other subjects' batches left out on arrival: the same
    batches, in the same order, with the whole stream's traffic. Without ``follow`` it
    returns once every selected subject has no message left; with ``follow`` it goes on until
    ``idle`` s pass without a message, ``timeout`` s pass, or ``stop`` (a threading.Event) is
    set (``idle`` and ``timeout`` in seconds, > 0: ``ValueError`` otherwise, before anything
    connects; so is ``idle`` without ``follow``). ``on_batch(subject, payload)`` sees every batch too. O(records). When
    ``timeout`` ends a read without ``follow`` before every subject was read to its end,
    ``consumer.timed_out`` is True: what it holds is not the stream's last state. A follow
    read that ``timeout`` ends first takes in what its consumer delivered before then (read
    again when lost on the way), and sets ``timed_out`` too when that failed for 10 s. The
    connection is bounded by ``timeout`` too (5 s otherwise): ``ConnectionError`` when none
    was made in that time; and so are the stream's lookup and the consumer's creation (the
    client's 5 s otherwise): a broker that refused them raises as below, else the read ends
    with nothing read and ``timed_out`` set.

    A JetStream error while reading (the broker restarting, restarted without its store, the
    pull consumer expired) does not end the read: after a pause growing to 2 s the
    subscription is made again (``consumer.resubscribes``, ``consumer.last_error``), after the
    last message applied when the stream is the same, from its first message when the stream
    was made again (a broker restarted without its store). Called where an event loop runs
    (a notebook, a coroutine), the read runs on a loop of its own in a worker thread, which
    this call waits for. Without
    ``follow`` the error is raised after 10 s of failures (``ConnectionError`` naming the
    client's reason when the broker stayed away that long); pass ``consumer=`` (a
    :class:`MarketDataConsumer`, ``TypeError`` otherwise, before anything connects) to keep
    what was received; a read that never began (no broker, no such stream) leaves its books
    under their keys and its selection as they were. A stream missing at the start raises at once, and so do (with
    :class:`StreamSetupError`) a broker without JetStream and a stream whose subjects none of the selected ones can match (another
    prefix's stream: nothing could be read).

    >>> c = consume("nats://127.0.0.1:4222", symbols=["AAPL"], kinds=["tob"])  # doctest: +SKIP
    >>> c.tob["AAPL"]                                                            # doctest: +SKIP
    """
    from matchcore._core import _flag_arg
    follow = _flag_arg(follow, "follow")    # before anything connects
    for name, value in (("timeout", timeout), ("idle", idle)):
        # a negative or NaN time read nothing and returned, as if the stream were empty; a
        # str failed in the comparison with an error that named neither the option nor the rule
        # (a bool is a numbers.Real: timeout=True read for 1 s)
        if value is not None and (isinstance(value, bool) or not (
                isinstance(value, numbers.Real) and value > 0)):
            raise ValueError(f"{name} must be > 0 seconds or None, got {value!r}")
        if name == "timeout" and value is not None:
            # the deadline is a float: an int past its range (10**400) failed there with
            # OverflowError, naming neither the option nor the rule, after the consumer's
            # timed_out had been reset (idle is only compared, an int of any size)
            try:
                float(value)
            except OverflowError:
                raise ValueError(f"{name} must be > 0 seconds or None, got "
                                 f"{_huge_shown(value)}: beyond "
                                 f"the float range (inf is a time without end)") from None
    # checked before anything connects: on_batch="print" failed at the first batch, after it
    # had gone into the books; stop=True at the first loop
    if on_batch is not None and not callable(on_batch):
        raise TypeError(f"on_batch must be callable (subject, payload), got "
                        f"{type(on_batch).__name__} {on_batch!r}")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop must be a threading.Event (anything with is_set()), got "
                        f"{type(stop).__name__} {stop!r}")
    if consumer is not None and not isinstance(consumer, MarketDataConsumer):
        # what the read keeps its state in: a dict failed with "'dict' object has no
        # attribute 'timed_out'", naming neither the argument nor what it takes
        raise TypeError(f"consumer must be a MarketDataConsumer, got "
                        f"{type(consumer).__name__} {consumer!r:.80}")
    if idle is not None and not follow:
        # without follow the read ends at the stream's end: the idle time never counted
        raise ValueError("idle needs follow=True (without it the read stops at the end of the "
                         "stream)")
    _nats()
    consumer = MarketDataConsumer() if consumer is None else consumer
    # once: a generator of symbols was used up by the check, and select() then selected
    # none, which reads every symbol
    symbols, kinds = _listed(symbols), _listed(kinds)
    filter_subjects(prefix, symbols, kinds)       # refuses a lone str or a bad kind first
    _check_stream_name(stream)
    _check_url(url)
    # of this read, not of an earlier one into the consumer; once the read is not refused
    # (a refused one set it first, forgetting that the last read was cut short)
    consumer.timed_out = False
    # a book label (NAME@locateN) reads its name's subjects and keeps that book
    # (select([]) also drops a label selection of an earlier read with this consumer);
    # selected once the stream is found: a read that never began (no broker, no stream)
    # moved the consumer's books to the keys of a selection nothing was read with
    selected = list(_selection(() if symbols is None else symbols)[0])
    subjects = list(dict.fromkeys(filter_subjects(prefix, None if symbols is None else selected,
                                                  kinds)))
    keep = None
    if len(subjects) > _MAX_FILTER_SUBJECTS:
        # too many for the server to make a consumer of in time: the kinds' wildcards, and
        # the selected subjects kept here
        keep, subjects = subjects, filter_subjects(prefix, None, kinds)
    deadline = None if timeout is None else time.monotonic() + timeout

    def read(stop):
        return _consume_async(url, subjects, stream, consumer, idle, follow, on_batch,
                              deadline, stop, timeout, keep,
                              lambda: consumer.select(() if symbols is None else symbols))

    try:
        asyncio.get_running_loop()
    except RuntimeError:                 # none in this thread: the read's own loop here
        asyncio.run(read(stop))
    else:
        _read_beside_loop(read, stop)
    return consumer


class _Either:
    # set when either event is: the caller's stop= or the halt of an interrupted wait
    def __init__(self, *events):
        self._events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


def _read_beside_loop(read, stop) -> None:
    # An event loop already runs in this thread (a notebook's kernel, an async application):
    # asyncio.run() refuses to start another in it ("cannot be called from a running event
    # loop"), after the arguments were taken. The read runs on a loop of its own in a worker
    # thread while this one waits, as it would for asyncio.run(); Ctrl-C during the wait stops
    # the read (its connection closed) before it is raised here.
    import threading

    halt = threading.Event()
    failed = []

    def run():
        try:
            asyncio.run(read(_Either(stop, halt)))
        except BaseException as e:       # raised in the caller's thread, as asyncio.run does
            failed.append(e)

    worker = threading.Thread(target=run, name="matchcore-nats-consume", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        halt.set()
        worker.join()
        raise
    if failed:
        raise failed[0]
