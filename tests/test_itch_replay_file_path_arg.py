"""The file readers' ``path``: ITCH bytes or a file descriptor given in its place are refused
with a TypeError that says what to do, and nothing is read or closed."""
from __future__ import annotations

import os

import pytest

import matchcore.itch as itch


def _readers():
    out = [("replay_file", itch.replay_file), ("open_stream", itch.open_stream)]
    try:
        from matchcore.feeds.dbn import replay_dbn
    except ImportError:      # the dbn extra
        return out
    return out + [("replay_dbn", replay_dbn)]


@pytest.mark.parametrize("name,reader", _readers())
def test_file_reader_given_itch_bytes_refused_naming_the_replayer(name, reader):
    # replay_file(data) with the day's bytes (decode() takes them) said "embedded null byte"
    data = itch.generate(None, messages=100, symbols=1, seed=1)
    with pytest.raises(TypeError, match="feed"):
        reader(data)


@pytest.mark.parametrize("name,reader", _readers())
@pytest.mark.parametrize("given", ["int", "bool", "numpy"])
def test_file_reader_given_a_file_descriptor_refused_descriptor_left_open(name, reader, tmp_path,
                                                                         given):
    # open() takes an int for a descriptor: replay_file(fd) read it and closed the caller's
    # descriptor, and replay_file(True) read fd 1 (stdout) and closed it
    import numpy as np

    path = tmp_path / "day.itch"
    itch.generate(path, messages=100, symbols=1, seed=1)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(TypeError, match="file descriptor"):
            reader({"int": fd, "bool": True, "numpy": np.int64(fd)}[given])
        os.fstat(fd)                   # still open
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)
    os.fstat(1)
