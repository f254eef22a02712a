"""DbnReplayer(names=...): {instrument_id: symbol}, each key a whole number and each symbol a
str, checked when the replayer is made."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from matchcore.feeds.dbn import DbnReplayer  # noqa: E402
from matchcore.feeds.dbn_gen import mbo_record  # noqa: E402


@pytest.mark.parametrize("names, error, words", [
    ({1001.7: "ES"}, TypeError, "names: instrument id 1001.7 is not a whole number"),
    ({True: "ES"}, TypeError, "names: instrument id True is not a whole number"),
    ({"10x": "ES"}, ValueError, "names: instrument id '10x' is not a whole number"),
    ({1001: b"ES"}, TypeError, "names: the symbol of instrument 1001 is not a str: b'ES'"),
    ({1001: None}, TypeError, "names: the symbol of instrument 1001 is not a str: None"),
    ({1001: 5}, TypeError, "names: the symbol of instrument 1001 is not a str: 5"),
])
def test_dbn_replayer_names_bad_key_or_symbol_refused_naming_it(names, error, words):
    # a float id was cut to an int (1001.7 named instrument 1001), a bool taken for 1, and a
    # symbol of another type named the book by its repr ("b'ES'", "None", "5")
    with pytest.raises(error) as e:
        DbnReplayer(names=names)
    assert str(e.value) == words


def test_dbn_replayer_names_ids_as_ints_numpy_ints_and_digit_strings_taken():
    r = DbnReplayer(names={1001: "ES", np.uint32(1002): "NQ", "1003": "CL"})
    data = b"".join(mbo_record(iid, 10 + iid, iid, 100 * 10**9, 1, "A", "B")
                    for iid in (1001, 1002, 1003))
    assert r.feed(data) == len(data)
    assert r.symbols == {0: "ES", 1: "NQ", 2: "CL"}


@pytest.mark.parametrize("names, words", [
    ({1001: ""}, "names: the symbol of instrument 1001 is empty (no symbols= selection could "
                 "pick its book)"),
    ({-1: "ES"}, "names: instrument id -1 is outside 0..4294967295 (a DBN instrument id is a "
                 "uint32)"),
    ({2**32: "ES"}, "names: instrument id 4294967296 is outside 0..4294967295 (a DBN "
                    "instrument id is a uint32)"),
    ({"4294967297": "ES"}, "names: instrument id '4294967297' is outside 0..4294967295 (a DBN "
                           "instrument id is a uint32)"),
])
def test_dbn_replayer_names_empty_symbol_or_id_beyond_uint32_refused(tmp_path, names, words):
    # an empty symbol named a book no symbols= selection can pick, and an id no record can
    # carry was kept without a word (a typo in a hand-written map went unnoticed)
    from matchcore.feeds.dbn import replay_dbn
    from matchcore.feeds.dbn_gen import generate_mbo

    with pytest.raises(ValueError) as e:
        DbnReplayer(names=names)
    assert str(e.value) == words
    seen = []
    path = generate_mbo(tmp_path / "t.dbn", records=50, instruments=2, seed=1)
    with pytest.raises(ValueError) as e:
        replay_dbn(path, names=names, on_chunk=lambda r: seen.append(r.stats["records"]))
    assert str(e.value) == words and seen == []


def test_dbn_replayer_names_empty_symbol_in_a_file_metadata_still_replayed(tmp_path):
    # the refusal is of a caller's map: a file's own metadata may map an id to ""
    from matchcore.feeds.dbn import read_metadata, replay_dbn
    from matchcore.feeds.dbn_gen import _metadata

    path = tmp_path / "empty_symbol.dbn"
    path.write_bytes(_metadata({1001: "", 1002: "NQ"}, False, 0, 10**18)
                     + b"".join(mbo_record(iid, 10 + iid, iid, 100 * 10**9, 1, "A", "B")
                                for iid in (1001, 1002)))
    with open(path, "rb") as f:
        assert read_metadata(f).names == {1001: "", 1002: "NQ"}
    r = replay_dbn(path)
    assert r.stats["records"] == 2
    assert sorted(r.symbols.values()) == ["", "NQ"]


@pytest.mark.parametrize("key", [" 1001", "+1001", "1_001", "\u0661\u0660\u0660\u0661", "-0"])
def test_dbn_replayer_names_id_string_not_plain_digits_refused(key):
    # int() took "1_001", " 1001", "+1001" and Arabic-Indic digits for instrument 1001 (and
    # "-0" for 0), where symbols= reads only plain ASCII digit strings as numbers
    with pytest.raises(ValueError) as e:
        DbnReplayer(names={key: "ES"})
    assert str(e.value) == f"names: instrument id {key!r} is not a whole number"
    assert DbnReplayer(names={"0012": "ES"}) is not None
