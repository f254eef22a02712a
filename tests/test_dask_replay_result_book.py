"""``FileResult.book()``, the final book of a file replayed by ``replay_files`` /
``replay_serial``, takes what the file's own replayer's ``book()`` takes: a symbol name (and for
ITCH a label ``NAME@locateN``), with the same refusals. It took a book number alone, and by a
plain dict lookup: ``book("AAPL")`` raised a bare ``KeyError: 'AAPL'`` where
``itch.replay_file(path).book("AAPL")`` gave the book, and ``book(True)`` or ``book(1.0)``
returned locate 1's book where the replayers raise ``TypeError``."""
from __future__ import annotations

import pytest

import matchcore.itch as itch
from matchcore.cluster.dask import replay_serial
from matchcore.feeds.dbn import replay_dbn
from matchcore.feeds.dbn_gen import generate_mbo


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("result_book")
    return (itch.generate(d / "day.itch", messages=3000, symbols=3, seed=4),
            generate_mbo(d / "mbo.dbn", records=2000, instruments=3, seed=5))


def test_file_result_book_by_name_is_the_replayers_book_by_name(files):
    day, mbo = files
    res = replay_serial([day, mbo])
    direct = itch.replay_file(day)
    for name in direct.symbols.values():
        assert res.files[0].book(name).state_hash() == direct.book(name).state_hash()
        L = next(L for L, n in direct.symbols.items() if n == name)
        assert res.files[0].book(f"{name}@locate{L}").state_hash() == \
            direct.book(L).state_hash()
        assert res.files[0].book(f" {L} ").state_hash() == direct.book(f" {L} ").state_hash()
    dbn = replay_dbn(mbo)
    for L, name in dbn.symbols.items():
        assert res.files[1].book(name).state_hash() == dbn.book(name).state_hash()
        # a string of digits is an instrument id there, as DbnReplayer.book reads it
        iid = dbn.instruments[L]
        assert res.files[1].book(str(iid)).state_hash() == dbn.book(str(iid)).state_hash()
        # an int stays the book number, as documented (and as the README's example uses it)
        assert res.files[1].book(L).state_hash() == dbn.books[L].state_hash()


@pytest.mark.parametrize("bad", [True, 1.0, b"AAPL", None])
def test_file_result_book_of_a_non_symbol_raises_type_error_as_the_replayers_do(files, bad):
    res = replay_serial([files[0]])
    with pytest.raises(TypeError) as direct:
        itch.replay_file(files[0]).book(bad)
    with pytest.raises(TypeError) as exc:
        res.files[0].book(bad)
    assert str(exc.value) == str(direct.value)


def test_file_result_book_of_no_book_names_the_file(files):
    day = files[0]
    res = replay_serial([day])
    for missing in ("NOPE", 999, "AAPL@locate9"):
        with pytest.raises(KeyError) as exc:
            res.files[0].book(missing)
        assert exc.value.args[0] == f"no book for symbol {missing!r} in {day}"


def test_file_result_book_records_the_events_of_orders_sent_to_it_as_the_replayers_book(files):
    # it was restored with record_events=False: a what-if order sent into the final book of a
    # Dask replay traded with no event to read, where the serial replay's book (and
    # OrderBook.from_snapshot of the same bytes) gives the order's events
    import numpy as np

    import matchcore as mc

    day, mbo = files
    res = replay_serial([day, mbo])
    for direct, result in ((itch.replay_file(day), res.files[0]),
                           (replay_dbn(mbo), res.files[1])):
        L = next(iter(direct.books))
        live, restored = direct.books[L], result.book(L)
        price, _ = live.best_ask()
        for b in (live, restored):
            b.events()
            b.submit(2**40, mc.Side.BUY, price, 1, ts_ns=7)
        got, want = restored.events(), live.events()
        assert len(want) and np.array_equal(got, want)
        assert restored.record_events
