"""parse_packet's refusals of what is not one contiguous packet of bytes."""
from __future__ import annotations

import numpy as np
import pytest

from matchcore.moldudp import build_packet, parse_packet


def test_moldudp_parse_packet_str_or_strided_refused_naming_the_argument():
    # a str or a strided buffer raised memoryview's own words ("a bytes-like object is
    # required, not 'str'", "casts are restricted to C-contiguous views"), naming neither the
    # packet nor what to do
    packet = build_packet(b"S1", 5, [b"hello", b"world"])
    with pytest.raises(TypeError) as e:
        parse_packet(packet.decode("latin-1"))
    assert str(e.value) == "parse_packet: data is bytes, not str"
    with pytest.raises(TypeError) as e:
        parse_packet(None)
    assert str(e.value) == "parse_packet: data is bytes, not NoneType"
    doubled = bytes(b for c in packet for b in (c, 0))
    for strided in (memoryview(doubled)[::2], np.frombuffer(doubled, np.uint8)[::2]):
        assert bytes(strided) == packet
        with pytest.raises(TypeError) as e:
            parse_packet(strided)
        assert str(e.value) == (f"parse_packet: data is contiguous bytes: this "
                                f"{type(strided).__name__} is a strided view (copy it first, "
                                f"e.g. bytes(data))")
        assert parse_packet(bytes(strided)).messages() == [b"hello", b"world"]
    # contiguous buffers of any shape or item size are read as their bytes
    assert parse_packet(bytearray(packet)).messages() == [b"hello", b"world"]
    assert parse_packet(np.frombuffer(packet, np.uint8).reshape(1, -1)).seq == 5
