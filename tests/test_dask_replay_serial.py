"""``replay_serial``: the same work as ``replay_files`` in this process, and the same
refusals before any of it: an option one of the files' formats refuses is refused before the
first file is replayed."""
from __future__ import annotations

import pytest

import matchcore.cluster.dask as cdask
import matchcore.itch as itch
from matchcore.cluster.dask import replay_one, replay_serial
from matchcore.feeds.dbn_gen import generate_mbo


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    d = tmp_path_factory.mktemp("serial")
    return (itch.generate(d / "day.itch", messages=3000, symbols=2, seed=1),
            generate_mbo(d / "mbo.dbn", records=2000, instruments=2, seed=2))


@pytest.mark.parametrize("order, bad", [("itch_first", {"infer_lengths": True}),
                                        ("dbn_first", {"max_books": 5})])
def test_replay_serial_option_a_later_format_refuses_refused_before_any_replay(
        mixed, monkeypatch, order, bad):
    # the first file was replayed whole (minutes for a day of ITCH) and only the second, of
    # the other format, refused the option; replay_files refused it before any task
    paths = list(mixed) if order == "itch_first" else list(reversed(mixed))
    with pytest.raises(Exception) as on_replay:     # what the file of the other format raises
        replay_one(paths[1], **bad)

    def replayed(*args, **kwargs):
        raise AssertionError("a file was replayed")

    monkeypatch.setattr(cdask, "replay_one", replayed)
    with pytest.raises(type(on_replay.value)) as exc:
        replay_serial(paths, **bad)
    assert str(exc.value) == str(on_replay.value)
