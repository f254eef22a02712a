"""``is_dbn`` of a plain file whose first bytes are there to read: they decide, not its name
(the name is for what cannot be checked: a compressed stream cut before its first bytes, a
pipe, a file too short to hold the magic)."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

import matchcore.itch as itch  # noqa: E402
from matchcore.feeds.dbn import is_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("name", ["day.dbn", "DAY.DBN", "day.dbn.zst", "day.dbn.gz"])
def test_is_dbn_plain_itch_bytes_under_a_dbn_name_false(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(itch.generate(None, messages=200, symbols=2, seed=1))
    assert not is_dbn(path)


def test_is_dbn_plain_dbn_bytes_under_any_name_true_and_too_short_to_tell_by_name(tmp_path):
    data = generate_mbo(None, records=20, seed=2)
    anon = tmp_path / "anon.bin"
    anon.write_bytes(data)
    assert is_dbn(anon)
    for name, want in (("short.dbn", True), ("short.bin", False)):
        path = tmp_path / name
        path.write_bytes(data[:2])               # fewer bytes than the magic: by the name
        assert is_dbn(path) is want
    empty = tmp_path / "empty.dbn"
    empty.write_bytes(b"")
    assert is_dbn(empty)
