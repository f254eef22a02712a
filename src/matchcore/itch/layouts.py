"""NASDAQ TotalView-ITCH 5.0 message layouts: the one table every other piece is derived from.

Each message type maps to its name, its total length in bytes (type byte included, length prefix
excluded) and its fields as ``(name, offset, size, kind)`` in wire order, exactly as the
specification lists them. Field names are the specification's names in snake_case.

Kinds:

* ``"alpha"``   -- ASCII, left-justified, space-padded (``S{size}`` in numpy, ``char[size]`` in C)
* ``"int"``     -- unsigned big-endian integer of 2, 4 or 8 bytes
* ``"ts"``      -- 6-byte big-endian nanoseconds since midnight (widened to uint64)
* ``"price4"``  -- 4-byte unsigned price with 4 implied decimals (uint32, 1/10000 dollar)
* ``"price8"``  -- 8-byte unsigned price with 8 implied decimals (uint64; MWCB levels)

The numpy dtypes (:data:`DTYPES`) and the compiled structs and decoders
(``_messages.pxd``, written by :func:`render_pxd`) both come from this table; a test checks that
the checked-in ``_messages.pxd`` is exactly what :func:`render_pxd` produces.

>>> LENGTHS["A"], [f[0] for f in LAYOUTS["D"].fields][-1]
(36, 'order_reference_number')
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Field", "Layout", "LAYOUTS", "LENGTHS", "DTYPES", "HEADER", "render_pxd"]


class Field(NamedTuple):
    name: str
    offset: int
    size: int
    kind: str


class Layout(NamedTuple):
    type: str           # the message type character
    name: str           # snake_case message name; the C struct is ``itch_<name>``
    length: int         # bytes on the wire, type byte included
    fields: tuple


# Every message starts with the same 11 bytes.
HEADER = (
    ("message_type", 0, 1, "alpha"),
    ("stock_locate", 1, 2, "int"),
    ("tracking_number", 3, 2, "int"),
    ("timestamp", 5, 6, "ts"),
)

# type -> (name, length, body fields starting at offset 11)
_SPEC = {
    "S": ("system_event", 12, [("event_code", 1, "alpha")]),
    "R": ("stock_directory", 39, [
        ("stock", 8, "alpha"), ("market_category", 1, "alpha"),
        ("financial_status_indicator", 1, "alpha"), ("round_lot_size", 4, "int"),
        ("round_lots_only", 1, "alpha"), ("issue_classification", 1, "alpha"),
        ("issue_sub_type", 2, "alpha"), ("authenticity", 1, "alpha"),
        ("short_sale_threshold_indicator", 1, "alpha"), ("ipo_flag", 1, "alpha"),
        ("luld_reference_price_tier", 1, "alpha"), ("etp_flag", 1, "alpha"),
        ("etp_leverage_factor", 4, "int"), ("inverse_indicator", 1, "alpha")]),
    "H": ("stock_trading_action", 25, [
        ("stock", 8, "alpha"), ("trading_state", 1, "alpha"), ("reserved", 1, "alpha"),
        ("reason", 4, "alpha")]),
    "Y": ("reg_sho_restriction", 20, [("stock", 8, "alpha"), ("reg_sho_action", 1, "alpha")]),
    "L": ("market_participant_position", 26, [
        ("mpid", 4, "alpha"), ("stock", 8, "alpha"), ("primary_market_maker", 1, "alpha"),
        ("market_maker_mode", 1, "alpha"), ("market_participant_state", 1, "alpha")]),
    "V": ("mwcb_decline_level", 35, [
        ("level_1", 8, "price8"), ("level_2", 8, "price8"), ("level_3", 8, "price8")]),
    "W": ("mwcb_status", 12, [("breached_level", 1, "alpha")]),
    "K": ("ipo_quoting_period_update", 28, [
        ("stock", 8, "alpha"), ("ipo_quotation_release_time", 4, "int"),
        ("ipo_quotation_release_qualifier", 1, "alpha"), ("ipo_price", 4, "price4")]),
    "J": ("luld_auction_collar", 35, [
        ("stock", 8, "alpha"), ("auction_collar_reference_price", 4, "price4"),
        ("upper_auction_collar_price", 4, "price4"), ("lower_auction_collar_price", 4, "price4"),
        ("auction_collar_extension", 4, "int")]),
    "h": ("operational_halt", 21, [
        ("stock", 8, "alpha"), ("market_code", 1, "alpha"),
        ("operational_halt_action", 1, "alpha")]),
    "A": ("add_order", 36, [
        ("order_reference_number", 8, "int"), ("buy_sell_indicator", 1, "alpha"),
        ("shares", 4, "int"), ("stock", 8, "alpha"), ("price", 4, "price4")]),
    "F": ("add_order_mpid", 40, [
        ("order_reference_number", 8, "int"), ("buy_sell_indicator", 1, "alpha"),
        ("shares", 4, "int"), ("stock", 8, "alpha"), ("price", 4, "price4"),
        ("attribution", 4, "alpha")]),
    "E": ("order_executed", 31, [
        ("order_reference_number", 8, "int"), ("executed_shares", 4, "int"),
        ("match_number", 8, "int")]),
    "C": ("order_executed_with_price", 36, [
        ("order_reference_number", 8, "int"), ("executed_shares", 4, "int"),
        ("match_number", 8, "int"), ("printable", 1, "alpha"), ("execution_price", 4, "price4")]),
    "X": ("order_cancel", 23, [
        ("order_reference_number", 8, "int"), ("cancelled_shares", 4, "int")]),
    "D": ("order_delete", 19, [("order_reference_number", 8, "int")]),
    "U": ("order_replace", 35, [
        ("original_order_reference_number", 8, "int"), ("new_order_reference_number", 8, "int"),
        ("shares", 4, "int"), ("price", 4, "price4")]),
    "P": ("trade", 44, [
        ("order_reference_number", 8, "int"), ("buy_sell_indicator", 1, "alpha"),
        ("shares", 4, "int"), ("stock", 8, "alpha"), ("price", 4, "price4"),
        ("match_number", 8, "int")]),
    "Q": ("cross_trade", 40, [
        ("shares", 8, "int"), ("stock", 8, "alpha"), ("cross_price", 4, "price4"),
        ("match_number", 8, "int"), ("cross_type", 1, "alpha")]),
    "B": ("broken_trade", 19, [("match_number", 8, "int")]),
    "I": ("noii", 50, [
        ("paired_shares", 8, "int"), ("imbalance_shares", 8, "int"),
        ("imbalance_direction", 1, "alpha"), ("stock", 8, "alpha"), ("far_price", 4, "price4"),
        ("near_price", 4, "price4"), ("current_reference_price", 4, "price4"),
        ("cross_type", 1, "alpha"), ("price_variation_indicator", 1, "alpha")]),
    "N": ("rpii", 20, [("stock", 8, "alpha"), ("interest_flag", 1, "alpha")]),
    "O": ("dlcr_price_discovery", 48, [
        ("stock", 8, "alpha"), ("open_eligibility_status", 1, "alpha"),
        ("minimum_allowable_price", 4, "price4"), ("maximum_allowable_price", 4, "price4"),
        ("near_execution_price", 4, "price4"), ("near_execution_time", 8, "int"),
        ("lower_price_range_collar", 4, "price4"), ("upper_price_range_collar", 4, "price4")]),
}


def _build() -> dict:
    out = {}
    for t, (name, length, body) in _SPEC.items():
        fields = [Field(*f) for f in HEADER]
        off = 11
        for fname, size, kind in body:
            fields.append(Field(fname, off, size, kind))
            off += size
        if off != length:
            raise AssertionError(f"ITCH layout {t!r}: fields end at {off}, length is {length}")
        out[t] = Layout(t, name, length, tuple(fields))
    return out


LAYOUTS: dict[str, Layout] = _build()
LENGTHS: dict[str, int] = {t: lay.length for t, lay in LAYOUTS.items()}

_NP = {("int", 2): "u2", ("int", 4): "u4", ("int", 8): "u8", ("ts", 6): "u8",
       ("price4", 4): "u4", ("price8", 8): "u8"}
_C = {"u2": "uint16_t", "u4": "uint32_t", "u8": "uint64_t"}
_READ = {("int", 2): "mc_be16", ("int", 4): "mc_be32", ("int", 8): "mc_be64", ("ts", 6): "mc_be48",
         ("price4", 4): "mc_be32", ("price8", 8): "mc_be64"}


def _np_code(f: Field) -> str:
    return f"S{f.size}" if f.kind == "alpha" else _NP[(f.kind, f.size)]


# align=True gives the layout a C compiler gives the generated struct, so the compiled decoders
# write records straight into the numpy array.
DTYPES: dict[str, np.dtype] = {
    t: np.dtype([(f.name, _np_code(f)) for f in lay.fields], align=True)
    for t, lay in LAYOUTS.items()
}


def render_pxd() -> str:
    """The Cython declarations generated from :data:`LAYOUTS`: one struct and one inline decoder
    per message type, the length table and the struct sizes. Written to ``_messages.pxd``."""
    out = [
        "# Generated from matchcore/itch/layouts.py by layouts.render_pxd(); do not edit by hand.",
        "# Regenerate: python -m matchcore.itch.layouts > src/matchcore/itch/_messages.pxd",
        "from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t",
        "from libc.string cimport memcpy",
        "",
        'cdef extern from "mc_endian.h" nogil:',
        "    uint16_t mc_be16(const uint8_t* p)",
        "    uint32_t mc_be32(const uint8_t* p)",
        "    uint64_t mc_be48(const uint8_t* p)",
        "    uint64_t mc_be64(const uint8_t* p)",
        "",
    ]
    for t, lay in LAYOUTS.items():
        out.append(f"# {t!r}: {lay.length} bytes")
        out.append(f"cdef struct itch_{lay.name}:")
        for f in lay.fields:
            if f.kind == "alpha":
                out.append(f"    char {f.name}" + (f"[{f.size}]" if f.size > 1 else ""))
            else:
                out.append(f"    {_C[_NP[(f.kind, f.size)]]} {f.name}")
        out.append("")
    for t, lay in LAYOUTS.items():
        out.append(f"cdef inline void itch_decode_{lay.name}(const uint8_t* p, "
                   f"itch_{lay.name}* m) noexcept nogil:")
        for f in lay.fields:
            if f.kind == "alpha" and f.size == 1:
                out.append(f"    m.{f.name} = <char>p[{f.offset}]")
            elif f.kind == "alpha":
                out.append(f"    memcpy(m.{f.name}, p + {f.offset}, {f.size})")
            else:
                out.append(f"    m.{f.name} = {_READ[(f.kind, f.size)]}(p + {f.offset})")
        out.append("")
    out.append("cdef inline int itch_length(uint8_t t) noexcept nogil:")
    out.append('    """Wire length of a message type (type byte included); 0 for an unknown type."""')
    for i, (t, lay) in enumerate(LAYOUTS.items()):
        out.append(f"    {'if' if i == 0 else 'elif'} t == {ord(t)}:  # {t!r}")
        out.append(f"        return {lay.length}")
    out.append("    return 0")
    out.append("")
    out.append("cdef inline size_t itch_struct_size(uint8_t t) noexcept nogil:")
    for i, (t, lay) in enumerate(LAYOUTS.items()):
        out.append(f"    {'if' if i == 0 else 'elif'} t == {ord(t)}:")
        out.append(f"        return sizeof(itch_{lay.name})")
    out.append("    return 0")
    out.append("")
    out.append("cdef inline void itch_decode_any(uint8_t t, const uint8_t* p, void* out) noexcept nogil:")
    out.append('    """Decode a message of known type t at p into the struct at out."""')
    for i, (t, lay) in enumerate(LAYOUTS.items()):
        out.append(f"    {'if' if i == 0 else 'elif'} t == {ord(t)}:")
        out.append(f"        itch_decode_{lay.name}(p, <itch_{lay.name}*>out)")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render_pxd(), end="")
