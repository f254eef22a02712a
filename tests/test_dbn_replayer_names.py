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
