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


def test_is_dbn_and_detect_format_take_a_bytes_path_as_replay_dbn_does(tmp_path):
    # replay_dbn(b"mbo.dbn") replays the file; is_dbn and cluster.dask.detect_format of the
    # same path raised pathlib's "argument should be a str object ..."
    from matchcore.cluster.dask import detect_format

    dbn = generate_mbo(tmp_path / "mbo.dbn.zst", records=20, seed=2)
    day = itch.generate(tmp_path / "day.itch", messages=200, symbols=2, seed=1)
    assert is_dbn(bytes(dbn)) and not is_dbn(bytes(day))
    assert detect_format(bytes(dbn)) == "dbn" and detect_format(bytes(day)) == "itch"


@pytest.mark.parametrize("bad", [5, None, 2.5])
def test_is_dbn_and_detect_format_of_another_object_refused_naming_path(bad):
    from matchcore.cluster.dask import detect_format

    for call in (is_dbn, detect_format):
        with pytest.raises(TypeError) as e:
            call(bad)
        assert str(e.value) == (f"path: a file is a path (str, bytes or os.PathLike), not "
                                f"{type(bad).__name__} {bad!r}")
