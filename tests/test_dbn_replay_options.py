"""replay_dbn checks its options before it opens the file, as itch.replay_file does: a bad
option is refused in the replayer's own words, whatever the path."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn", reason="the DBN extra: pip install 'matchcore[dbn]'")

import matchcore.itch as itch  # noqa: E402
from matchcore.feeds.dbn import DbnReplayer, replay_dbn  # noqa: E402

BAD = [{"bogus": 1}, {"snapshot_every": 3, "snapshot_depth": 0}, {"snapshot_every": 1.5},
       {"until_ns": -1}, {"book_capacity": -1}, {"symbols": "SYM0"}, {"record_tob": "no"}]


@pytest.mark.parametrize("bad", BAD, ids=str)
def test_replay_dbn_bad_option_refused_before_the_file_is_opened(tmp_path, bad):
    with pytest.raises(Exception) as made:
        DbnReplayer(**bad)
    for path in (tmp_path / "missing.dbn", tmp_path):
        with pytest.raises(type(made.value)) as exc:
            replay_dbn(path, **bad)
        assert str(exc.value) == str(made.value)
        # as the ITCH replay of the same path refuses it (an unknown keyword names its class)
        with pytest.raises(type(made.value)) as itch_exc:
            itch.replay_file(path, **bad)
        if "bogus" not in bad:
            assert str(itch_exc.value) == str(made.value)


def test_replay_dbn_symbols_of_a_generator_select_as_a_list_does(tmp_path):
    # the options were checked by a replayer made first, which used a generator up: the
    # replayer of the file then found it empty ("symbols is empty"), where the ITCH replay
    # of a generator selects
    from matchcore.feeds.dbn_gen import generate_mbo

    path = generate_mbo(tmp_path / "day.dbn", records=1000, instruments=3, seed=4)
    listed = replay_dbn(path, symbols=["SYM1", "1003"])
    assert listed.stats["books"] == 2
    given = replay_dbn(path, symbols=(s for s in ["SYM1", "1003"]))
    assert given.stats == listed.stats and given.symbols == listed.symbols
    assert sorted(b.state_hash() for b in given.books.values()) == \
        sorted(b.state_hash() for b in listed.books.values())


def test_dbn_replayer_book_name_or_id_with_spaces_is_the_book_symbols_selects(tmp_path):
    # symbols=[" 1003 ", " SYM1"] kept those two books, but book(" SYM1") and book(" 1003")
    # raised KeyError "no book for symbol ..." for them
    from matchcore.feeds.dbn_gen import generate_mbo

    path = generate_mbo(tmp_path / "day.dbn", records=1000, instruments=3, seed=4)
    r = replay_dbn(path, symbols=[" 1003 ", " SYM1"])
    assert sorted(r.books) == [1, 2]
    for given in (" SYM1", "SYM1 ", "\tSYM1"):
        assert r.book(given) is r.books[1]
    for given in (" 1003", "1003 ", " 01003 "):
        assert r.book(given) is r.books[2]
    with pytest.raises(KeyError, match="no book for symbol ' SYM0'"):
        r.book(" SYM0")
    with pytest.raises(KeyError):
        r.book(" 1001 ")
