"""ITCH 5.0 decoding: every message type against the specification, framing errors, files."""
from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import numpy as np
import pytest

import matchcore.itch as itch
from matchcore.itch import layouts
from matchcore.itch._decode import struct_sizes
from conftest import outcome

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "itch"
AAPL = DATA / "aapl-20191230-0935.itch50"
RITCH = DATA / "ritch-ex20101224-zero-prefix.itch50"
HEAD = DATA / "nasdaq-head-4096B-truncated.itch50"
MEATPY = DATA / "meatpy-synthetic.itch50"


def shared_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared market data not found at {path} (expected ../shared/data beside the repo)")
    return path

# The specification's message lengths (type byte included).
SPEC_LENGTHS = {"S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
                "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
                "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48}

# Each message's fields after the common header, as struct codes, written from the specification
# independently of layouts.py: c = 1 alpha, Ns = N alpha, H/I/Q = 2/4/8-byte big-endian integers
# (prices are 4-byte integers with 4 implied decimals; MWCB levels 8-byte with 8).
HEADER = [("message_type", "c"), ("stock_locate", "H"), ("tracking_number", "H"), ("timestamp", "6s")]
SPEC_FIELDS = {
    "S": [("event_code", "c")],
    "R": [("stock", "8s"), ("market_category", "c"), ("financial_status_indicator", "c"),
          ("round_lot_size", "I"), ("round_lots_only", "c"), ("issue_classification", "c"),
          ("issue_sub_type", "2s"), ("authenticity", "c"), ("short_sale_threshold_indicator", "c"),
          ("ipo_flag", "c"), ("luld_reference_price_tier", "c"), ("etp_flag", "c"),
          ("etp_leverage_factor", "I"), ("inverse_indicator", "c")],
    "H": [("stock", "8s"), ("trading_state", "c"), ("reserved", "c"), ("reason", "4s")],
    "Y": [("stock", "8s"), ("reg_sho_action", "c")],
    "L": [("mpid", "4s"), ("stock", "8s"), ("primary_market_maker", "c"),
          ("market_maker_mode", "c"), ("market_participant_state", "c")],
    "V": [("level_1", "Q"), ("level_2", "Q"), ("level_3", "Q")],
    "W": [("breached_level", "c")],
    "K": [("stock", "8s"), ("ipo_quotation_release_time", "I"),
          ("ipo_quotation_release_qualifier", "c"), ("ipo_price", "I")],
    "J": [("stock", "8s"), ("auction_collar_reference_price", "I"),
          ("upper_auction_collar_price", "I"), ("lower_auction_collar_price", "I"),
          ("auction_collar_extension", "I")],
    "h": [("stock", "8s"), ("market_code", "c"), ("operational_halt_action", "c")],
    "A": [("order_reference_number", "Q"), ("buy_sell_indicator", "c"), ("shares", "I"),
          ("stock", "8s"), ("price", "I")],
    "F": [("order_reference_number", "Q"), ("buy_sell_indicator", "c"), ("shares", "I"),
          ("stock", "8s"), ("price", "I"), ("attribution", "4s")],
    "E": [("order_reference_number", "Q"), ("executed_shares", "I"), ("match_number", "Q")],
    "C": [("order_reference_number", "Q"), ("executed_shares", "I"), ("match_number", "Q"),
          ("printable", "c"), ("execution_price", "I")],
    "X": [("order_reference_number", "Q"), ("cancelled_shares", "I")],
    "D": [("order_reference_number", "Q")],
    "U": [("original_order_reference_number", "Q"), ("new_order_reference_number", "Q"),
          ("shares", "I"), ("price", "I")],
    "P": [("order_reference_number", "Q"), ("buy_sell_indicator", "c"), ("shares", "I"),
          ("stock", "8s"), ("price", "I"), ("match_number", "Q")],
    "Q": [("shares", "Q"), ("stock", "8s"), ("cross_price", "I"), ("match_number", "Q"),
          ("cross_type", "c")],
    "B": [("match_number", "Q")],
    "I": [("paired_shares", "Q"), ("imbalance_shares", "Q"), ("imbalance_direction", "c"),
          ("stock", "8s"), ("far_price", "I"), ("near_price", "I"),
          ("current_reference_price", "I"), ("cross_type", "c"), ("price_variation_indicator", "c")],
    "N": [("stock", "8s"), ("interest_flag", "c")],
    "O": [("stock", "8s"), ("open_eligibility_status", "c"), ("minimum_allowable_price", "I"),
          ("maximum_allowable_price", "I"), ("near_execution_price", "I"),
          ("near_execution_time", "Q"), ("lower_price_range_collar", "I"),
          ("upper_price_range_collar", "I")],
}


def spec_message(t: str, rng: random.Random) -> tuple[bytes, dict]:
    """A message of type t packed with struct from SPEC_FIELDS, and the values it holds
    (integers as Python ints, alpha fields as bytes, the timestamp as an int)."""
    fields = HEADER + SPEC_FIELDS[t]
    values, packed = {}, []
    for name, code in fields:
        if name == "message_type":
            v = t.encode()
            packed.append(v)
        elif name == "timestamp":
            v = rng.randrange(1 << 48)
            packed.append(v.to_bytes(6, "big"))
        elif code == "c":
            v = bytes([rng.randrange(33, 127)])
            packed.append(v)
        elif code.endswith("s"):
            v = bytes(rng.randrange(65, 91) for _ in range(int(code[:-1])))
            packed.append(v)
        else:
            # the top bit set now and then: fields are unsigned
            bits = {"H": 16, "I": 32, "Q": 64}[code]
            v = rng.randrange(1 << bits) | (rng.randrange(2) << (bits - 1))
            packed.append(v)
        values[name] = v
    fmt = ">" + "".join(code for _, code in fields)
    return struct.pack(fmt, *packed), values


def frame(msg: bytes) -> bytes:
    return len(msg).to_bytes(2, "big") + msg


def test_layouts_every_type_length_and_fields_match_spec():
    assert set(layouts.LAYOUTS) == set(SPEC_LENGTHS), "23 message types"
    for t, lay in layouts.LAYOUTS.items():
        fmt = ">" + "".join(c for _, c in HEADER + SPEC_FIELDS[t])
        assert struct.calcsize(fmt) == SPEC_LENGTHS[t] == lay.length, t
        assert [f.name for f in lay.fields] == [n for n, _ in HEADER + SPEC_FIELDS[t]], t
        offsets = np.cumsum([0] + [struct.calcsize(">" + c) for _, c in HEADER + SPEC_FIELDS[t]])
        assert [f.offset for f in lay.fields] == offsets[:-1].tolist(), t


def test_layouts_generated_pxd_is_current():
    pxd = Path(layouts.__file__).with_name("_messages.pxd").read_text()
    assert pxd == layouts.render_pxd(), "regenerate: python -m matchcore.itch.layouts > _messages.pxd"


def test_layouts_c_struct_sizes_equal_numpy_itemsizes():
    sizes = struct_sizes()
    assert sizes == {t: dt.itemsize for t, dt in layouts.DTYPES.items()}


@pytest.mark.parametrize("t", sorted(SPEC_LENGTHS))
def test_decode_each_type_spec_message_every_field_equal(t):
    rng = random.Random(ord(t))
    msgs = [spec_message(t, rng) for _ in range(5)]
    d = itch.decode(b"".join(frame(m) for m, _ in msgs))
    assert d.stats["messages"] == 5 and d.stats["counts"] == {t: 5}
    assert d.stats["truncated"] is None and d.stats["bad_lengths"] == 0
    arr = d[t]
    assert arr.dtype == layouts.DTYPES[t]
    for i, (_, values) in enumerate(msgs):
        for name, v in values.items():
            got = arr[name][i]
            got = bytes(got) if isinstance(v, bytes) else int(got)
            assert got == v, f"{t}.{name}[{i}]: decoded {got!r}, packed {v!r}"


def test_decode_mixed_types_counts_and_order_within_type():
    rng = random.Random(7)
    types = [rng.choice(sorted(SPEC_LENGTHS)) for _ in range(500)]
    msgs = [spec_message(t, rng) for t in types]
    d = itch.decode(b"".join(frame(m) for m, _ in msgs))
    assert d.stats["messages"] == 500
    assert d.stats["counts"] == {t: types.count(t) for t in set(types)}
    for t in set(types):
        want = [v["timestamp"] for (m, v), tt in zip(msgs, types) if tt == t]
        assert d[t]["timestamp"].tolist() == want


def test_decode_unknown_type_skipped_by_length_and_counted():
    rng = random.Random(1)
    a, av = spec_message("A", rng)
    d_msg, _ = spec_message("D", rng)
    data = frame(a) + frame(b"z" + bytes(9)) + frame(b"q") + frame(d_msg)
    d = itch.decode(data)
    assert d.stats["messages"] == 4
    assert d.stats["unknown_types"] == {"z": 1, "q": 1}
    assert d.stats["bad_lengths"] == 0
    assert int(d["A"]["order_reference_number"][0]) == av["order_reference_number"]
    assert len(d["D"]) == 1


def test_decode_type_byte_not_a_letter_reported_as_bad_prefix_then_resynchronised():
    # Every ITCH message type is a letter: a frame whose type byte is none is bytes read out
    # of step, not a message to skip by its "length" (which swallowed the messages after it)
    rng = random.Random(1)
    a, _ = spec_message("A", rng)
    d_msg, _ = spec_message("D", rng)
    for junk in (b"\x01", b"\x00" + bytes(300), b"\xe9" + bytes(40)):
        data = frame(a) + frame(junk) + frame(d_msg)
        d = itch.decode(data)
        assert d.stats["counts"] == {"A": 1, "D": 1}, junk
        assert d.stats["unknown_types"] == {}
        assert d.stats["bad_length_offsets"] == [(len(frame(a)), "type byte is not a letter")]
        assert d.stats["bytes_skipped"] == len(frame(junk))


def _stats_fed_in_pieces(data: bytes, piece: int) -> dict:
    # a stream fed `piece` bytes at a time, the unconsumed tail kept in front of the next piece
    r = itch.Replayer()
    tail = b""
    for k in range(0, len(data), piece):
        buf = tail + data[k:k + piece]
        tail = buf[r.feed(buf):]
    return r.finish(tail)


def test_decode_unknown_type_whose_length_leads_to_no_message_is_a_bad_prefix():
    rng = random.Random(5)
    msgs = [frame(spec_message(rng.choice("AEDUX"), rng)[0]) for _ in range(200)]
    # a letter type with a "length" that lands inside a message, over 150 good messages
    jump = sum(map(len, msgs[:150])) + 7
    bad = b"".join(msgs[:20]) + jump.to_bytes(2, "big") + b"z" + b"".join(msgs[20:])
    d = itch.decode(bad)
    assert d.stats["messages"] == 200 and d.stats["unknown_types"] == {}
    assert d.stats["bad_length_offsets"] == [
        (sum(map(len, msgs[:20])), "unknown message type whose length leads to no message")]
    assert d.stats["bytes_skipped"] == 3
    # unknown types in a row that end on a message are skipped and counted, whole or in pieces
    run = frame(b"z" + bytes(30)) + frame(b"y" + bytes(3)) + frame(b"z" + bytes(70))
    good = b"".join(msgs[:20]) + run + b"".join(msgs[20:])
    d = itch.decode(good)
    assert d.stats["messages"] == 203 and d.stats["unknown_types"] == {"z": 2, "y": 1}
    assert d.stats["bad_lengths"] == 0
    # a long run of a new type (a day-start burst) is taken whole, and so is the message a
    # resynchronisation after a bad prefix finds in front of such a run
    # (the last 16 of a run that runs into a damaged message cannot be told from bytes out of
    # step: they go with it)
    zs = [frame(b"z" + bytes([k % 256]) * rng.randrange(5, 90)) for k in range(300)]
    burst = b"".join(zs)
    spoilt = msgs[1][:2] + b"\x00" + msgs[1][3:]          # bad prefix: type byte 0
    data = msgs[0] + burst + spoilt + msgs[2] + burst + b"".join(msgs[3:])
    d = itch.decode(data)
    assert d.stats["messages"] == 199 + 600 - 16 and d.stats["counts"]["z"] == 600 - 16
    assert d.stats["bad_lengths"] == 1
    assert d.stats["bytes_skipped"] == sum(map(len, zs[-16:])) + len(spoilt)
    for piece in (3, 50, 1000):
        st = _stats_fed_in_pieces(data, piece)
        assert {k: st[k] for k in ("messages", "counts", "bad_lengths", "bytes_skipped")} == \
            {k: d.stats[k] for k in ("messages", "counts", "bad_lengths", "bytes_skipped")}, piece
    for piece in (1, 5, 64):
        st = _stats_fed_in_pieces(good, piece)
        assert (st["messages"], st["unknown_types"], st["bad_lengths"], st["truncated"]) == \
            (203, {"z": 2, "y": 1}, 0, None), piece


@pytest.mark.parametrize("garbage", [b"\xff" * 40, b"\xff" * 5, b"\x00\x00\x00\x07"])
def test_decode_garbage_at_the_end_skipped_not_reported_truncated(tmp_path, garbage):
    # As damage between messages: only the garbage is skipped. Its last one or two bytes,
    # too few to open a frame, were left over and reported as a message cut short
    # ("truncated: 2 bytes"), of a stream that was whole, and bytes_skipped left them out.
    data = itch.generate(None, messages=300, symbols=2, seed=4)
    path = tmp_path / "trailing.itch"
    path.write_bytes(data + garbage)
    for stats in (itch.decode(data + garbage).stats, itch.decode(path).stats,
                  itch.replay_file(path).stats, _stats_fed_in_pieces(data + garbage, 7)):
        assert (stats["messages"], stats["bad_lengths"], stats["bytes_skipped"],
                stats["truncated"]) == (300, 1, len(garbage), None)
    # last bytes that can open a frame of a known type are still a message cut short
    for tail in (b"\x00", b"\x00\x24", b"\xff\x00"):
        cut = data + b"\xff" * 5 + tail
        kept = tail[tail.index(b"\x00"):]
        for stats in (itch.decode(cut).stats, _stats_fed_in_pieces(cut, 7)):
            assert stats["bytes_skipped"] == len(cut) - len(data) - len(kept)
            assert stats["truncated"] == {"offset": len(cut) - len(kept), "bytes": len(kept),
                                          "expected": None}


def test_decode_zero_prefix_reported_with_offset_then_resynchronised():
    rng = random.Random(2)
    msgs = [frame(spec_message("A", rng)[0]) for _ in range(6)]
    bad = b"\x00\x00" + msgs[2][2:]          # a zero prefix in front of the third message
    data = b"".join(msgs[:2]) + bad + b"".join(msgs[3:])
    d = itch.decode(data)
    off = len(msgs[0]) + len(msgs[1])
    assert d.stats["bad_lengths"] == 1
    assert d.stats["bad_length_offsets"] == [(off, "zero length prefix")]
    assert d.stats["counts"] == {"A": 5}
    assert d.stats["bytes_skipped"] == len(bad)


def test_decode_prefix_not_matching_known_type_reported():
    rng = random.Random(3)
    m = [frame(spec_message("E", rng)[0]) for _ in range(3)]
    bad = b"\x00\x05" + m[1][2:]
    d = itch.decode(m[0] + bad + m[2])
    assert d.stats["bad_length_offsets"] == [(len(m[0]), "length prefix does not match the message type")]
    assert d.stats["counts"] == {"E": 2}


def test_decode_truncated_tail_reported_with_offset():
    rng = random.Random(4)
    m = [frame(spec_message("U", rng)[0]) for _ in range(3)]
    data = m[0] + m[1] + m[2][:20]
    d = itch.decode(data)
    assert d.stats["messages"] == 2
    assert d.stats["truncated"] == {"offset": len(m[0]) * 2, "bytes": 20, "expected": 37}


def test_decode_infer_lengths_reads_zero_prefix_messages():
    rng = random.Random(5)
    msgs = [spec_message(t, rng) for t in "SRAFEXDUPQ"]
    data = b"".join(b"\x00\x00" + m for m, _ in msgs)
    d = itch.decode(data, infer_lengths=True)
    assert d.stats["messages"] == 10 and d.stats["bad_lengths"] == 0
    assert int(d["U"]["price"][0]) == msgs[7][1]["price"]
    plain = itch.decode(data)
    assert plain.stats["bad_length_offsets"][0] == (0, "zero length prefix")


def test_decode_empty_buffer_no_messages():
    d = itch.decode(b"")
    assert dict(d) == {} and d.stats["messages"] == 0 and d.stats["truncated"] is None


def test_decode_gzip_file_equals_plain_buffer(tmp_path):
    data = itch.generate(None, messages=30_000, symbols=5, seed=11)
    gz = tmp_path / "day.itch.gz"
    with gzip.open(gz, "wb") as f:
        f.write(data)
    whole = itch.decode(data)
    streamed = itch.decode(gz, chunk_size=1 << 17)      # many chunks, tails carried over
    assert streamed.stats == whole.stats
    for t in whole:
        assert np.array_equal(streamed[t], whole[t]), t


def test_decode_arrays_padding_bytes_zero_buffer_and_file(tmp_path):
    # the dtypes mirror the C structs and carry padding no field covers: it held whatever the
    # heap had there, so two decodes of one stream saved different .npy bytes
    data = itch.generate(None, messages=30_000, symbols=5, seed=11)
    path = tmp_path / "day.itch"
    path.write_bytes(data)
    for source, kw in ((data, {}), (path, {"chunk_size": 1 << 17})):
        junk = [b"\xff" * (1 << 16) for _ in range(256)]   # freed heap, not zero by chance
        del junk
        d = itch.decode(source, **kw)
        for t, a in d.items():
            dt = a.dtype
            covered = np.zeros(dt.itemsize, dtype=bool)
            for name in dt.names:
                field, offset = dt.fields[name][:2]
                covered[offset:offset + field.itemsize] = True
            raw = a.view(np.uint8).reshape(len(a), dt.itemsize)
            assert not raw[:, ~covered].any(), (source is data, t)


def test_decode_aapl_file_counts_match_provenance():
    d = itch.decode(shared_file(AAPL))
    assert d.stats["messages"] == 49_947
    assert d.stats["counts"] == {"A": 22_121, "D": 24_150, "E": 2_162, "U": 1_130, "P": 281,
                                 "X": 98, "C": 4, "F": 1}
    assert d.stats["truncated"] is None and d.stats["bad_lengths"] == 0
    assert set(d["A"]["stock_locate"].tolist()) == {13}
    assert set(d["A"]["stock"].tolist()) == {b"AAPL    "}
    # prices are cent multiples in 1/10000 dollars, timestamps from 09:35 on
    assert np.all(d["A"]["price"] % 100 == 0)
    assert int(d["A"]["timestamp"].min()) >= itch.parse_time("09:35:00")


def test_decode_ritch_zero_prefix_file_with_infer_lengths_reads_to_end():
    path = shared_file(RITCH)
    d = itch.decode(path, infer_lengths=True)
    assert d.stats["messages"] == 12_012
    assert d.stats["counts"] == {"A": 4_997, "P": 5_000, "D": 1_745, "E": 198, "X": 45, "U": 12,
                                 "F": 3, "S": 6, "R": 3, "H": 3}
    assert d.stats["truncated"] is None and d.stats["bad_lengths"] == 0
    assert sorted(bytes(s).rstrip() for s in d["R"]["stock"]) == [b"ALC", b"BOB", b"CHAR"]
    plain = itch.decode(path)
    assert plain.stats["bad_length_offsets"][0] == (0, "zero length prefix")


def test_decode_truncated_head_101_messages_then_truncation_at_4081():
    d = itch.decode(shared_file(HEAD))
    assert d.stats["messages"] == 101
    assert d.stats["counts"] == {"S": 1, "R": 98, "H": 1, "Y": 1}
    assert d.stats["truncated"] == {"offset": 4_081, "bytes": 15, "expected": 41}


def test_decode_meatpy_synthetic_counts_and_symbols():
    d = itch.decode(shared_file(MEATPY))
    assert d.stats["messages"] == 20
    assert d.stats["counts"] == {"S": 6, "R": 2, "A": 7, "E": 2, "X": 1, "D": 1, "P": 1}
    assert [bytes(s).rstrip() for s in d["R"]["stock"]] == [b"MEAT", b"PYTH"]
    assert d["S"]["event_code"].tolist()[:2] == [b"O", b"S"]


def test_open_stream_gzip_file_closed_with_the_stream(tmp_path):
    # closing the stream of a gzip'd file closed the decompressor only: the file under it
    # stayed open until the garbage collector found it (a ResourceWarning, a descriptor held)
    import gzip
    import os

    data = itch.generate(None, messages=500, symbols=2, seed=3)
    plain = tmp_path / "day.itch"
    plain.write_bytes(data)
    packed = tmp_path / "day.itch.gz"
    packed.write_bytes(gzip.compress(data))

    def open_on(path):
        return sum(1 for fd in os.listdir("/proc/self/fd")
                   if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path))

    for path in (packed, plain):
        with itch.open_stream(path) as f:
            assert open_on(path) == 1
            got = f.read()
        assert got == data and f.closed
        assert open_on(path) == 0, path.name


def test_open_stream_fifo_gzip_magic_split_across_reads_decompressed(tmp_path):
    # open_stream told gzip by peek(2), one read of the FIFO: a writer whose first write held
    # one byte of the magic had its gzip'd ITCH handed out as plain (compressed) bytes
    import fcntl
    import gzip
    import os
    import struct
    import termios
    import threading
    import time

    data = itch.generate(None, messages=500, symbols=2, seed=3)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    for payload in (gzip.compress(data), data):
        split = []

        def write(p=payload):
            with open(fifo, "wb") as f:
                f.write(p[:1])
                f.flush()
                # the rest once the reader has taken the first byte alone (a fixed wait let a
                # slow reader find the whole payload there, and the split went untested)
                deadline = time.monotonic() + 20
                while struct.unpack("i", fcntl.ioctl(f, termios.FIONREAD, b"\0" * 4))[0] \
                        and time.monotonic() < deadline:
                    time.sleep(0.001)
                split.append(not struct.unpack(
                    "i", fcntl.ioctl(f, termios.FIONREAD, b"\0" * 4))[0])
                f.write(p[1:])

        w = threading.Thread(target=write)
        w.start()
        try:
            with itch.open_stream(fifo) as f:
                got = f.read()
        finally:
            w.join()
        assert split == [True], "the reader did not take the first byte alone"
        assert got == data


_FEED_DATA = itch.generate(None, messages=300, symbols=2, seed=8)
_EVEN = _FEED_DATA[: len(_FEED_DATA) // 8 * 8]


@pytest.mark.parametrize("make", [
    lambda: np.frombuffer(_FEED_DATA, np.uint8),
    lambda: np.frombuffer(_FEED_DATA, np.int8),
    lambda: np.frombuffer(_EVEN, np.uint16),
    lambda: np.frombuffer(_EVEN, ">u4"),
    lambda: np.frombuffer(_EVEN, np.float64),
    lambda: np.frombuffer(_EVEN, np.uint8).reshape(8, -1),
    lambda: np.frombuffer(_FEED_DATA, "S1"),
    lambda: memoryview(np.frombuffer(_EVEN, np.int32)),
    lambda: np.zeros(0, np.uint16),
    lambda: np.frombuffer(_FEED_DATA, np.uint8)[::2],
    lambda: np.frombuffer(_EVEN, np.uint16)[::2],
    lambda: memoryview(_FEED_DATA)[::2],
    lambda: [1, 2, 3],
    lambda: None,
    lambda: 3.5,
], ids=["u8", "i8", "u16", "be_u4", "f8", "2d", "S1", "mv_i4", "empty_u16", "strided_u8",
        "strided_u16", "strided_mv", "list", "none", "float"])
def test_itch_replayer_feed_and_decode_same_inputs_taken_and_refused(make):
    # decode() read any C-contiguous buffer as its bytes; Replayer.feed() refused every numpy
    # array but uint8 ("Buffer dtype mismatch"), and the two refused strided slices with
    # different errors (TypeError from decode, ValueError from feed)
    buf = make()
    dec = outcome(lambda: itch.decode(buf))
    r = itch.Replayer()
    fed = outcome(lambda: r.feed(buf))
    r2 = itch.Replayer()
    fin = outcome(lambda: r2.finish(buf)["messages"])
    assert dec[0] == fed[0] == fin[0], (dec, fed, fin)
    if dec[0] == "ok":
        raw = memoryview(buf).tobytes()
        ref = itch.Replayer()
        assert fed[1] == ref.feed(raw)
        assert dec[1].stats["messages"] == fin[1] == itch.decode(raw).stats["messages"]
        assert r.stats["messages"] == ref.stats["messages"]
    else:
        assert dec[1] == fed[1] == fin[1]
        assert r.stats["messages"] == 0 and not r.finished


@pytest.mark.parametrize("make", [
    lambda: np.array([_FEED_DATA], dtype=object),
    lambda: np.array([_FEED_DATA[:100], _FEED_DATA[100:]], dtype=object),
    lambda: memoryview(np.array([_FEED_DATA], dtype=object)),
    lambda: np.zeros(4, dtype=[("data", object), ("n", np.int64)]),
], ids=["object", "object_chunks", "mv_object", "struct_with_object"])
def test_itch_buffer_of_python_objects_refused_not_read_as_their_pointers(make):
    # An array of Python objects (np.array(chunks, dtype=object), say) holds pointers to them:
    # decode(), feed() and finish() read those 8-byte addresses as the stream and reported bad
    # length prefixes or bytes from heap addresses (a result that changed from run to run)
    buf = make()
    for call in (itch.decode, itch.Replayer().feed, itch.Replayer().finish):
        with pytest.raises(TypeError, match=r"Python objects .* pointers"):
            call(buf)
    r = itch.Replayer()
    with pytest.raises(TypeError):
        r.feed(buf)
    assert r.stats["messages"] == 0 and r.bytes_consumed == 0 and not r.finished


@pytest.mark.parametrize("dtype", ["M8[ns]", "m8[s]", [("t", "M8[us]")]])
def test_itch_datetime_arrays_read_as_their_bytes_like_any_dtype(dtype):
    # "a numpy array of any dtype read as its bytes": numpy exports no buffer for datetime64
    # and timedelta64, and decode(), feed() and finish() raised numpy's "cannot include dtype
    # 'M' in a buffer"
    buf = np.frombuffer(_EVEN[: len(_EVEN) // 32 * 32], dtype).reshape(4, -1)
    raw = buf.tobytes()
    assert itch.decode(buf).stats == itch.decode(raw).stats
    r, ref = itch.Replayer(), itch.Replayer()
    assert r.feed(buf) == ref.feed(raw) and r.stats == ref.stats
    r, ref = itch.Replayer(), itch.Replayer()
    assert r.finish(buf) == ref.finish(raw)
    # a strided one is refused as any strided buffer is
    with pytest.raises(ValueError, match="not C-contiguous"):
        itch.decode(np.frombuffer(_EVEN, dtype)[::2])


def test_replay_file_gzip_first_chunk_is_one_chunk_not_two(tmp_path):
    # the format check of a gzip'd file inflated a whole chunk, which the first fill then took
    # for a full buffer nothing had been consumed from and doubled: 8 MiB read and fed first,
    # not the 4 MiB chunk the README states
    from matchcore.itch import _ChunkReader

    data = itch.generate(None, messages=400_000, symbols=4, seed=2)
    assert len(data) > 2 * itch.CHUNK_SIZE
    path = tmp_path / "day.itch.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1))
    reader = _ChunkReader(path, itch.CHUNK_SIZE)
    try:
        view = reader.fill()
        assert len(reader.buf) == itch.CHUNK_SIZE and len(view) == itch.CHUNK_SIZE
        assert bytes(view) == data[:itch.CHUNK_SIZE]
    finally:
        reader.close()


def test_decode_foreign_bytes_refused_alike_from_a_buffer_and_a_file(tmp_path):
    # decode(path) refused DBN, native, text and compressed streams; decode(the same bytes)
    # framed them as ITCH: zero messages and a bad length prefix, no error
    import matchcore.native as native
    from matchcore import COMMAND_DTYPE

    cmds = tmp_path / "flow.mccmd"
    c = np.zeros(10, COMMAND_DTYPE)
    c["order_id"], c["price"], c["qty"] = np.arange(1, 11), 100, 1
    native.write_commands(cmds, c)
    data = itch.generate(None, messages=200, symbols=2, seed=1)
    csv = b"34200.004241176,1,16113575,18,5853300,-1\n" * 4
    cut = data[data.index(b"AAPL    "):]
    plain = {"dbn": b"DBN\x02" + bytes(60), "native": cmds.read_bytes(), "text": csv,
             "cut": cut, "short text": b"hello, world\n"}
    for name, blob in plain.items():
        path = tmp_path / f"{name}.bin"
        path.write_bytes(blob)
        with pytest.raises(ValueError) as by_path:
            itch.decode(path)
        with pytest.raises(ValueError) as by_buffer:
            itch.decode(blob)
        assert str(by_path.value).split(": ", 1)[1] == str(by_buffer.value).split(": ", 1)[1]
        assert str(by_buffer.value).startswith("the buffer: ")
    zstd = pytest.importorskip("zstandard")
    for name, blob in (("zst", zstd.ZstdCompressor().compress(data)),
                       ("gz", gzip.compress(plain["dbn"]))):
        path = tmp_path / f"day.{name}"
        path.write_bytes(blob)
        with pytest.raises(ValueError, match="compressed|gzip'd DBN"):
            itch.decode(path)
        with pytest.raises(ValueError, match=r"the buffer: a \w+-compressed stream, not ITCH"):
            itch.decode(blob)
    # ITCH itself, and nothing at all, are decoded from a buffer as before
    assert itch.decode(data).stats["messages"] == 200 and itch.decode(b"").stats["messages"] == 0


@pytest.mark.parametrize("chunk_size, error", [(1, ValueError), (1 << 16, ValueError),
                                               (float(1 << 20), TypeError)])
def test_decode_bad_chunk_size_refused_for_a_buffer_as_for_a_file(tmp_path, chunk_size, error):
    # decode(path, chunk_size=1) was refused, decode(buffer, chunk_size=1) taken without a word
    data = itch.generate(None, messages=200, symbols=2, seed=1)
    path = tmp_path / "d.itch"
    path.write_bytes(data)
    with pytest.raises(error) as by_path:
        itch.decode(path, chunk_size=chunk_size)
    with pytest.raises(error) as by_buffer:
        itch.decode(data, chunk_size=chunk_size)
    assert str(by_path.value) == str(by_buffer.value)


def test_itch_last_two_bytes_a_zero_prefix_are_a_bad_prefix_not_a_message_cut_short():
    # A zero prefix opens no message (without infer_lengths): anywhere else a bad length
    # prefix, as the last two bytes of the data it was reported as a message cut short
    data = itch.generate(None, messages=200, symbols=2, seed=1)
    b = data + b"\x00\x00"
    r = itch.Replayer()
    for s in (itch.decode(b).stats, r.finish(b[r.feed(b):])):
        assert (s["bad_lengths"], s["bytes_skipped"], s["truncated"]) == (1, 2, None)
        assert tuple(s["bad_length_offsets"][0]) == (len(data), "zero length prefix")
    # a last byte or two that can open a message are still one cut short
    s = itch.decode(data + b"\x00\x24").stats
    assert (s["bad_lengths"], s["truncated"]["bytes"]) == (0, 2)


@pytest.mark.parametrize("chain", [False, True])
def test_decode_unknown_type_whose_length_runs_past_the_end_is_a_bad_prefix(tmp_path, chain):
    # Bytes read out of step (a message cut short) that look like an unknown type whose
    # "length" runs past the end of the data: the good messages after them, up to 64 KiB, were
    # reported as one message cut short; mid-stream the same damage is a bad prefix and the
    # messages after it are replayed. Likewise when its "length" leads to a second such frame
    # that runs past the end.
    data = itch.generate(None, messages=600, symbols=2, seed=4)
    fr = []
    pos = 0
    while pos < len(data):
        n = 2 + int.from_bytes(data[pos:pos + 2], "big")
        fr.append(data[pos:pos + n])
        pos += n
    k = sum(map(len, fr[:500]))
    rest = b"".join(fr[500:])
    if chain:
        # its length leads into message 510's body, to bytes that open another such frame
        at = sum(map(len, fr[500:510])) + 10
        rest = rest[:at] + b"\xff\xfez" + rest[at + 3:]
        damage = (at + 1).to_bytes(2, "big") + b"z"
    else:
        damage = b"\xff\xf0z"
    bad = data[:k] + damage + rest
    path = tmp_path / "damaged.itch"
    path.write_bytes(bad)
    for s in (itch.decode(bad).stats, itch.decode(path).stats, itch.replay_file(path).stats,
              _stats_fed_in_pieces(bad, 7), _stats_fed_in_pieces(bad, 1000)):
        assert (s["messages"], s["truncated"], s["unknown_types"]) == (600, None, {})
        assert s["bad_length_offsets"] == \
            [(k, "unknown message type whose length leads to no message")]
        assert s["bytes_skipped"] == 3


@pytest.mark.parametrize("chunk", [1, 2, 5, 63])
def test_itch_replayer_first_bytes_fed_in_small_chunks_judged_as_fed_whole(chunk):
    # The first feed() judged its bytes as the whole stream: a stream fed in small chunks was
    # refused as text for its first printable byte, where fed whole it was taken (framed, a
    # bad prefix), and a DBN or gzip stream whose magic was split over two feeds was taken
    data = itch.generate(None, messages=300, symbols=2, seed=5)
    dbn = b"DBN\x03" + bytes(60) + data
    for stream in (data[2:], dbn, gzip.compress(data), b"S" + data, b"time,type\n" * 9):
        whole = itch.Replayer()
        want = outcome(lambda: (whole.feed(stream), whole.finish(b"")))
        r = itch.Replayer()

        def chunked():
            held = b""
            for i in range(0, len(stream), chunk):
                held += stream[i:i + chunk]
                held = held[r.feed(held):]
            return r.finish(held)

        got = outcome(chunked)
        assert got[0] == want[0], (stream[:8], got, want)
        if got[0] == "ok":
            assert got[1] == want[1][1]
        else:
            assert got[1] == want[1]


@pytest.mark.parametrize("garbage", [b"not gzip", b"\x1f", b"\x00\x00PK\x03\x04"])
def test_open_stream_gzip_trailing_data_reported_as_the_replay_does(tmp_path, garbage):
    # open_stream said "Not a gzipped file (b'no')" (gzip.BadGzipFile) where replay_file and
    # decode say "trailing data after the gzip stream (at compressed byte N ...)"

    data = itch.generate(None, messages=500, symbols=2, seed=3)
    member = gzip.compress(data)
    path = tmp_path / "day.itch.gz"
    path.write_bytes(member + garbage)
    at = len(member) + len(garbage) - len(garbage.lstrip(b"\0"))
    with pytest.raises(ValueError) as replayed:
        itch.replay_file(path)
    assert f"{path}: trailing data after the gzip stream (at compressed byte {at:,}" \
        in str(replayed.value)
    with itch.open_stream(path) as f:
        assert f.read(len(data)) == data
        with pytest.raises(ValueError) as e:
            f.read()
    assert str(e.value) == (f"{path}: trailing data after the gzip stream (at compressed byte "
                            f"{at:,})")
    # zero padding alone after the stream is no trailing data
    path.write_bytes(member + bytes(5))
    with itch.open_stream(path) as f:
        assert f.read() == data


@pytest.mark.parametrize("suffix", ["", "/"])
def test_decode_path_named_as_replay_file_opens_it(tmp_path, suffix):
    # decode("day.itch/") decoded the file day.itch (pathlib dropped the separator that makes
    # it a directory) and decode("") the current directory, where replay_file opens the name
    # as given and refuses both
    path = itch.generate(tmp_path / "day.itch", messages=300, symbols=2, seed=1)
    given = str(path) + suffix if suffix else ""
    with pytest.raises(OSError) as replayed:
        itch.replay_file(given)
    with pytest.raises(OSError) as decoded:
        itch.decode(given)
    assert type(decoded.value) is type(replayed.value)
    assert str(decoded.value) == str(replayed.value)
