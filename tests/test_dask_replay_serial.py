"""``replay_serial``: the same work as ``replay_files`` in this process, and the same
refusals before any of it: an option one of the files' formats refuses is refused before the
first file is replayed."""
from __future__ import annotations

import numpy as np
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


def test_replay_serial_and_files_refusals_of_inputs_name_the_functions_not_options(
        mixed, tmp_path, capsys):
    # the library said "several files or --dask take ITCH or DBN files" and "replay it
    # without --dask", the command line's ways; the command keeps them
    import os

    from cli_replay_checks import run_cli

    from matchcore.cluster.dask import replay_files

    csv = tmp_path / "AAPL_message_1.csv"
    csv.write_text("34200.004241176,1,16113575,18,5853300,1\n")
    paths = [mixed[0], csv]
    with pytest.raises(ValueError) as e:
        replay_serial(paths)
    assert str(e.value) == (f"{csv} is a LOBSTER message CSV: replay_serial and replay_files "
                            "take ITCH or DBN files (replay it by itself)")
    code, out, err = run_cli(capsys, "replay", *map(str, paths), "--no-progress")
    assert code == 1 and err.strip() == (f"matchcore replay: error: {csv} is a LOBSTER message "
                                         "CSV: several files or --dask take ITCH or DBN files "
                                         "(replay it by itself)")
    r, w = os.pipe()
    try:
        fd = f"/dev/fd/{r}"
        with pytest.raises(ValueError) as e:
            replay_files([fd], "tcp://127.0.0.1:1", fmt="itch")
        assert "a worker cannot open it; replay it with replay_serial, in this process, " \
               "or write it" in str(e.value) and "--dask" not in str(e.value)
        code, out, err = run_cli(capsys, "replay", fd, "--format", "itch", "--dask", "local",
                                 "--no-progress")
        assert code == 1 and "a worker cannot open it; replay it without --dask, or " in err
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("fmt", [None, "itch"])
def test_replay_files_directory_refused_before_any_cluster_as_serial(mixed, tmp_path,
                                                                      monkeypatch, fmt):
    # with fmt given nothing read the path on the client: a LocalCluster was started (or a
    # task sent to the caller's) for the worker to fail on "[Errno 21] Is a directory"
    from matchcore.cluster.dask import replay_files

    def connect(*args, **kwargs):
        raise AssertionError("a cluster was started or connected to")

    monkeypatch.setattr(cdask, "connect", connect)
    d = tmp_path / "day.d"
    d.mkdir()
    for call in (lambda: replay_files([mixed[0], d], "local", fmt=fmt),
                 lambda: replay_serial([mixed[0], d], fmt=fmt)):
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == f"paths: {d} is a directory, not a file"


@pytest.mark.parametrize("symbols", [5, np.int64(7), 1.5])
def test_replay_symbols_a_single_number_refused_naming_symbols(mixed, monkeypatch, symbols):
    # a lone number was iterated: "'int' object is not iterable", naming neither symbols nor
    # what it takes
    from matchcore.cluster.dask import replay_files
    from matchcore.feeds.dbn import replay_dbn

    def connect(*args, **kwargs):
        raise AssertionError("a cluster was started or connected to")

    monkeypatch.setattr(cdask, "connect", connect)
    how = (f"write [{symbols!r}]" if not isinstance(symbols, float)
           else "a name is a str, a number an int or a string of digits")
    want = (f"symbols is an iterable of names or numbers, not a single "
            f"{type(symbols).__name__} ({symbols!r}): {how}")
    for call in (lambda: itch.replay_file(mixed[0], symbols=symbols),
                 lambda: replay_dbn(mixed[1], symbols=symbols),
                 lambda: replay_serial(list(mixed), symbols=symbols),
                 lambda: replay_files(list(mixed), "local", symbols=symbols)):
        with pytest.raises(TypeError) as e:
            call()
        assert str(e.value) == want


def test_replay_serial_symbols_of_a_generator_select_in_every_file(mixed):
    # checked once per format before the first file, a generator was used up there and the
    # files were replayed with an empty selection ("symbols is empty")
    listed = replay_serial(list(mixed), symbols=["1", "1001"])
    given = replay_serial(list(mixed), symbols=iter(["1", "1001"]))
    assert [f.stats for f in given.files] == [f.stats for f in listed.files]
    assert [f.stats["books"] for f in given.files] == [1, 1]


def test_replay_bytes_paths_taken_as_the_replays_take_them(mixed):
    # itch.replay_file and replay_dbn take a bytes path; replay_serial (and replay_one, a
    # task's unit of work) refused one in pathlib's words ("argument should be a str object
    # or an os.PathLike object returning str, not <class 'bytes'>")
    given = [bytes(p) for p in mixed]
    res = replay_serial(given)
    plain = replay_serial(list(mixed))
    assert [f.file for f in res.files] == [f.file for f in plain.files]
    for a, b in zip(res.files, plain.files):
        assert a.stats == b.stats and a.hashes == b.hashes
    assert replay_one(given[0]).stats == plain.files[0].stats


@pytest.mark.parametrize("bad", [5, None, 1.5])
def test_replay_paths_of_another_type_refused_naming_paths_before_any_cluster(
        mixed, monkeypatch, bad):
    # "expected str, bytes or os.PathLike object, not int": pathlib's words named neither the
    # argument nor the file, and replay_files said them only on its way to the cluster
    from matchcore.cluster.dask import replay_files

    def connect(*args, **kwargs):
        raise AssertionError("a cluster was started or connected to")

    monkeypatch.setattr(cdask, "connect", connect)
    for call in (lambda: replay_files([mixed[0], bad], "local"),
                 lambda: replay_serial([mixed[0], bad])):
        with pytest.raises(TypeError) as e:
            call()
        assert str(e.value).startswith(f"paths: a file is a path (str, bytes or "
                                       f"os.PathLike), not {type(bad).__name__} {bad!r}")
    with pytest.raises(TypeError, match=f"^path: a file is a path .*not {type(bad).__name__}"):
        replay_one(bad)
