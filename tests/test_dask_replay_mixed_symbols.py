"""``symbols`` over files of both formats: a number that is a DBN instrument id but no ITCH
locate (above 65535) selects that instrument's books in the DBN files and nothing in the ITCH
files, as a name one file lacks does; it was refused for the whole run by the ITCH files'
locate range."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn")

import matchcore.itch as itch  # noqa: E402
from matchcore.cluster.dask import replay_serial  # noqa: E402
from matchcore.feeds.dbn import read_metadata, replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402

from cli_replay_checks import run_cli  # noqa: E402

WIDE = 70001        # an instrument id beyond the ITCH locates (CME's run to six digits)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    d = tmp_path_factory.mktemp("mixed")
    day = itch.generate(d / "day.itch", messages=3000, symbols=2, seed=1)
    mbo = generate_mbo(d / "mbo.dbn", records=2000, instruments=2, seed=2, with_names=False)
    with open(mbo, "rb") as f:
        start = read_metadata(f).header_bytes
    data = bytearray(mbo.read_bytes())
    for at in range(start, len(data), 56):
        if int.from_bytes(data[at + 4:at + 8], "little") == 1001:
            data[at + 4:at + 8] = WIDE.to_bytes(4, "little")
    mbo.write_bytes(bytes(data))
    return day, mbo


def _hashes(books):
    return sorted(b.state_hash() for b in books.values())


@pytest.mark.parametrize("symbols", [[str(WIDE)], [WIDE, "1"]])
def test_replay_symbols_dbn_instrument_beyond_itch_locates_kept_in_dbn_nothing_in_itch(
        mixed, symbols):
    day, mbo = mixed
    res = replay_serial([day, mbo], symbols=symbols)
    dbn = replay_dbn(mbo, symbols=symbols)
    assert dbn.stats["books"] == 1
    assert res.files[1].stats == dbn.stats
    assert sorted(res.files[1].hashes.values()) == _hashes(dbn.books)
    itch_symbols = [s for s in symbols if str(s) != str(WIDE)]
    whole = itch.replay_file(day)
    assert res.files[0].stats["messages"] == whole.stats["messages"]
    if itch_symbols:
        alone = itch.replay_file(day, symbols=itch_symbols)
        assert res.files[0].stats == alone.stats
        assert sorted(res.files[0].hashes.values()) == _hashes(alone.books)
    else:
        assert res.files[0].books == {} and res.files[0].stats["books"] == 0


def test_replay_symbols_beyond_every_files_ids_still_refused(mixed):
    day, mbo = mixed
    # no file of ITCH alone holds it, and no DBN file an id past the uint32 range
    with pytest.raises(ValueError, match="outside 0..65535"):
        replay_serial([day], symbols=[str(WIDE)])
    with pytest.raises(ValueError, match="outside 0..4294967295"):
        replay_serial([day, mbo], symbols=[str(2**32)])


def test_replay_files_symbols_dbn_instrument_beyond_itch_locates_same_as_serial(mixed):
    pytest.importorskip("distributed")
    from matchcore.cluster.dask import connect, replay_files

    day, mbo = mixed
    serial = replay_serial([day, mbo], symbols=[str(WIDE), "2"])
    with connect("local", workers=1, processes=False) as client:
        res = replay_files([day, mbo], client, symbols=[str(WIDE), "2"])
    for a, b in zip(serial.files, res.files):
        assert a.stats == b.stats and a.hashes == b.hashes


def test_cli_replay_several_files_symbols_dbn_instrument_beyond_itch_locates(mixed, capsys):
    day, mbo = mixed
    code, out, err = run_cli(capsys, "replay", str(day), str(mbo), "--symbols", str(WIDE),
                             "--no-progress")
    assert code == 0, err
    assert "mbo.dbn (dbn): 2,000 messages" in out and ", 1 book, " in out
    assert f"note: no symbol numbered {WIDE} in {day}" in out
