"""The wire format of :mod:`matchcore.io.nats`: the batch header and record layouts, subject
names and their tokens, and batches encoded and decoded. No network, no nats-py."""
from __future__ import annotations

import re

import numpy as np

from matchcore.io import symbol_name

MAGIC = b"MC"
VERSION = 1
KIND_TRADE, KIND_TOB, KIND_L2 = 1, 2, 3
KINDS = {"trade": KIND_TRADE, "tob": KIND_TOB, "l2": KIND_L2}
KIND_NAMES = {v: k for k, v in KINDS.items()}

# magic, version, kind, locate, count, seq (records published to this subject, i.e. of this
# (kind, symbol name) and whatever locates carry the name, before this batch)
HEADER_DTYPE = np.dtype([("magic", "S2"), ("version", "u1"), ("kind", "u1"), ("locate", "<u2"),
                         ("count", "<u2"), ("seq", "<u8")])
WIRE_TRADE = np.dtype([("ts", "<i8"), ("price", "<i8"), ("shares", "<i8"),
                       ("match_number", "<u8"), ("ref", "<u8"), ("kind", "S1"), ("side", "S1"),
                       ("flag", "S1"), ("_pad", "V1")])
WIRE_TOB = np.dtype([("ts", "<i8"), ("bid", "<i8"), ("bid_qty", "<i8"), ("ask", "<i8"),
                     ("ask_qty", "<i8")])
WIRE_L2 = np.dtype([("ts", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("orders", "<i4"),
                    ("side", "S1"), ("_pad", "V3")])
WIRE = {KIND_TRADE: WIRE_TRADE, KIND_TOB: WIRE_TOB, KIND_L2: WIRE_L2}
# A trade record's kind and side as the replay's trade sink writes them: E, C (executions),
# P (non-cross trade), Q (cross); B, S, or a space for a cross, which has no side
TRADE_KINDS = b"ECPQ"
TRADE_SIDES = b"BS "


def _unknown_kinds(kinds) -> list:
    """The entries of ``kinds`` that are not kind names (:data:`KINDS`), once each, sorted by
    their text; whatever they are (a number, a list), rather than failing in the check.

    >>> _unknown_kinds(["tob", "x", 1, "x"])
    [1, 'x']
    """
    bad = {}
    for k in kinds:
        if not isinstance(k, str) or k not in KINDS:
            bad.setdefault(repr(k), k)
    return sorted(bad.values(), key=str)


def _byte_table(valid: bytes) -> np.ndarray:
    # True at the bytes of ``valid``: one lookup per record
    table = np.zeros(256, bool)
    table[np.frombuffer(valid, np.uint8)] = True
    return table


_TRADE_VALID = {"kind": (TRADE_KINDS, _byte_table(TRADE_KINDS)),
                "side": (TRADE_SIDES, _byte_table(TRADE_SIDES))}
assert (HEADER_DTYPE.itemsize, WIRE_TRADE.itemsize, WIRE_TOB.itemsize, WIRE_L2.itemsize) == \
    (16, 44, 40, 32)

# NATS header naming the publishing session of a batch: ``seq`` counts from 0 again in each
# session, so a consumer needs it to tell a new run from a redelivery.
SESSION_HEADER = "Matchcore-Session"
DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "MATCHCORE"
DEFAULT_PREFIX = "mc"
_TOKEN_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_TOKEN_ESC = re.compile(r"_([0-9A-F]{2})")


# '.'-separated tokens, none empty, without whitespace, control characters (Unicode category
# Cc: C0 controls, DEL and C1 controls) or the wildcards * and >: a subject to publish to
_PUBLISHABLE = re.compile(r"[^.\s*>\x00-\x1f\x7f-\x9f]+(?:\.[^.\s*>\x00-\x1f\x7f-\x9f]+)*")


def check_subject(subject, what: str = "subject") -> str:
    """``subject`` when it is a NATS subject to publish to: one or more ``.``-separated
    tokens, none empty, without whitespace, control characters or the wildcards ``*`` /
    ``>``; ``TypeError`` when it is not a str, ``ValueError`` otherwise (``what`` names it).
    O(len(subject)).

    >>> check_subject("mc.tob.AAPL")
    'mc.tob.AAPL'
    """
    if not isinstance(subject, str):
        raise TypeError(f"{what} must be a str, got {type(subject).__name__}")
    if _PUBLISHABLE.fullmatch(subject) is None:
        raise ValueError(f"{what} {subject!r} is not a NATS subject to publish to: "
                         f"'.'-separated tokens, none empty, without whitespace, control "
                         f"characters, * or >")
    return subject


def check_prefix(prefix) -> str:
    """``prefix`` when it can start a subject to publish to: one or more ``.``-separated tokens,
    none empty, without whitespace, control characters or the wildcards ``*`` / ``>``;
    ``ValueError`` otherwise.
    (The broker took ``mc.*``: the stream captured ``mc.*.>``, the batches went to the literal
    subjects ``mc.*.tob.AAPL`` and a subscriber with that prefix read every other prefix's
    batches as its own.)

    >>> check_prefix("mc"), check_prefix("md.eu")
    ('mc', 'md.eu')
    """
    # control characters too: under a prefix with DEL the batches were stored, and a
    # consumer filtering on that prefix was delivered none of them
    return check_subject(prefix, "subject prefix")


def subject_token(symbol: str) -> str:
    """A symbol as one NATS subject token, reversibly (:func:`symbol_from_token`): ASCII
    letters, digits and ``-`` stay; every other byte of its UTF-8 form (``.``, ``_``, spaces,
    wildcards) becomes ``_`` and two upper-case hex digits. Distinct symbols never share a
    token. Leading and trailing spaces are ignored; the empty name is ``_``.

    >>> subject_token("BRK.A"), subject_token("BRK_A"), subject_token("AAPL")
    ('BRK_2EA', 'BRK_5FA', 'AAPL')
    """
    raw = symbol_name(symbol).encode()
    # the escape character is escaped too: without it BRK.A and BRK_A would share a subject
    tok = "".join(chr(b) if b in _TOKEN_KEEP else f"_{b:02X}" for b in raw)
    return tok or "_"


def symbol_from_token(token: str) -> str:
    """The symbol a subject token stands for: the inverse of :func:`subject_token`. A ``_``
    not followed by two upper-case hex digits is kept as it is (tokens written before the
    escape existed). O(len(token)).

    >>> symbol_from_token("BRK_2EA"), symbol_from_token("BRK_5FA"), symbol_from_token("AAPL")
    ('BRK.A', 'BRK_A', 'AAPL')
    """
    if token == "_":
        return ""
    if "_" not in token:
        return token
    parts = _TOKEN_ESC.split(token)      # text, hex, text, hex, ...
    raw = b"".join(bytes([int(x, 16)]) if i % 2 else x.encode() for i, x in enumerate(parts))
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return token


# The largest seq: the header's u64. A batch's records take seq .. seq + count - 1, and
# seq + count is the next batch's seq, which must fit the header too.
_SEQ_TOP = (1 << 64) - 1


def encode_batch(kind: int, locate: int, seq: int, records: np.ndarray) -> bytes:
    """One NATS payload: header + ``records`` (already in the kind's wire dtype). O(records).
    ``kind`` one of :data:`KINDS`, ``locate`` an int in 0..65535 and ``seq`` in 0..2**64-1,
    with ``seq + len(records)`` (the next batch's seq) in that range too: ``TypeError`` for a
    value that is not an int, ``ValueError`` outside that range, and for records
    :func:`decode_batch` refuses (an L2 record whose side is neither ``B`` nor ``S``, a trade
    record whose kind is not one of :data:`TRADE_KINDS` or whose side is not one of
    :data:`TRADE_SIDES`).

    >>> rec = np.zeros(2, dtype=WIRE_TOB); rec["bid"] = [100, 101]
    >>> len(encode_batch(KIND_TOB, 7, 0, rec))
    96
    """
    # header fields as their types hold them: a fractional locate or seq was truncated into
    # the header, an unknown kind was a KeyError, a value out of range numpy's OverflowError
    for name, value, top, top_text in (("kind", kind, None, None),
                                       ("locate", locate, 0xFFFF, "65535"),
                                       ("seq", seq, _SEQ_TOP, "2**64-1")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if top is not None and not 0 <= value <= top:
            raise ValueError(f"{name} must be in 0..{top_text}, got {value}")
    if kind not in WIRE:
        raise ValueError(f"unknown record kind {kind}: choose from {sorted(WIRE)} "
                         f"({', '.join(f'{k} {n}' for k, n in sorted(KIND_NAMES.items()))})")
    # 1-d: a 2-d array's first dimension went into the header's count and every record
    # after it, a batch whose length its header contradicts
    if not isinstance(records, np.ndarray) or records.ndim != 1 or records.dtype != WIRE[kind]:
        raise TypeError(f"records of kind {kind} must be a 1-d numpy array of dtype "
                        f"{WIRE[kind]}, got "
                        + (f"{records.ndim}-d {records.dtype}" if isinstance(records, np.ndarray)
                           else type(records).__name__))
    if len(records) > 0xFFFF:
        raise ValueError("at most 65535 records per batch")
    if seq + len(records) > _SEQ_TOP:
        raise ValueError(f"seq + count must be in 0..2**64-1 (the next batch's seq), got "
                         f"{seq} + {len(records)}")
    why = _bad_records(kind, records)
    if why is not None:
        # a batch every consumer counts as malformed and leaves out
        raise ValueError(why)
    h = np.zeros(1, dtype=HEADER_DTYPE)
    h[0] = (MAGIC, VERSION, kind, locate, len(records), seq)
    return h.tobytes() + records.tobytes()


def _bad_records(kind: int, rec: np.ndarray) -> str | None:
    # Why records of ``kind`` cannot go into a batch, else None: the one check of
    # encode_batch and decode_batch. O(records) for trade and L2, O(1) otherwise.
    if kind == KIND_TRADE:
        # a trade of another kind or side was counted in the totals, and its shares in the
        # volume, as whatever volume_mask made of it
        for field, (valid, table) in _TRADE_VALID.items():
            v = rec[field].view(np.uint8)
            bad = np.flatnonzero(~table[v])
            if len(bad):
                i = int(bad[0])
                return (f"trade record {i} of {len(rec)} has {field} {bytes([v[i]])!r}, not "
                        f"one of {' '.join(repr(chr(c)) for c in valid)}")
    if kind == KIND_L2:
        # a level on another side was stored and counted, and shown on neither side
        side = rec["side"].view(np.uint8)         # b"\x00" reads as b"" as an S1
        bad = np.flatnonzero((side != ord("B")) & (side != ord("S")))
        if len(bad):
            i = int(bad[0])
            return f"L2 record {i} of {len(rec)} has side {bytes([side[i]])!r}, not B or S"
    return None


class BatchError(ValueError):
    """A payload that is not a well-formed batch (bad magic, version, kind or length, a ``seq``
    whose records run past 2**64-1, an L2 record whose side is neither ``B`` nor ``S``, or a
    trade record of a kind or side not in :data:`TRADE_KINDS` / :data:`TRADE_SIDES`)."""


def decode_batch(payload: bytes):
    """``(kind, locate, seq, records)`` of one payload; :class:`BatchError` when malformed
    (an L2 record whose side is neither ``B`` nor ``S`` too: no book level is on another side;
    a trade record whose kind is not ``E``, ``C``, ``P`` or ``Q`` or whose side is not ``B``,
    ``S`` or a space (a cross), which no publisher writes; and a ``seq + count`` beyond
    2**64-1, which no publisher can make: the next batch's ``seq`` would not fit its header,
    and the subject's later batches would all look like redeliveries).
    ``records`` is a read-only numpy view in the kind's wire dtype. O(1), O(records) for
    trade and L2.

    >>> level = np.zeros(1, WIRE_L2); level["side"] = b"B"
    >>> kind, loc, seq, rec = decode_batch(encode_batch(KIND_L2, 3, 5, level))
    >>> (kind, loc, seq, len(rec))
    (3, 3, 5, 1)
    """
    if len(payload) < HEADER_DTYPE.itemsize:
        raise BatchError(f"batch of {len(payload)} bytes is shorter than its 16-byte header")
    h = np.frombuffer(payload, dtype=HEADER_DTYPE, count=1)[0]
    if bytes(h["magic"]) != MAGIC or int(h["version"]) != VERSION:
        raise BatchError(f"bad magic/version {bytes(h['magic'])!r}/{int(h['version'])}")
    kind = int(h["kind"])
    if kind not in WIRE:
        raise BatchError(f"unknown record kind {kind}")
    n = int(h["count"])
    want = HEADER_DTYPE.itemsize + n * WIRE[kind].itemsize
    if len(payload) != want:
        raise BatchError(f"batch of {n} {KIND_NAMES[kind]} records should be {want} bytes, "
                         f"got {len(payload)}")
    seq = int(h["seq"])
    if seq + n > _SEQ_TOP:
        raise BatchError(f"seq + count {seq} + {n} passes 2**64-1: the next batch's seq "
                         f"would not fit the header")
    rec = np.frombuffer(payload, dtype=WIRE[kind], count=n, offset=HEADER_DTYPE.itemsize)
    # read-only whatever the payload: a bytearray's was a writable view of the caller's buffer
    rec.flags.writeable = False
    why = _bad_records(kind, rec)
    if why is not None:
        raise BatchError(why)
    return kind, int(h["locate"]), seq, rec
