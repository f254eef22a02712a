"""Replay on a real Dask LocalCluster: results identical to the serial replay (same counters,
trades, top-of-book records and books, by state hash), for many files and for one DBN file split
by instrument; and the command line's --dask."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("distributed", reason="Dask replay tests need the 'dask' extra: "
                                          "pip install 'matchcore[dask]'")
pytest.importorskip("databento_dbn", reason="DBN files need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

import matchcore.itch as itch  # noqa: E402
from matchcore.__main__ import main  # noqa: E402
from matchcore.cluster.dask import (connect, merge_parts, replay_files, replay_one,  # noqa: E402
                                    replay_serial, trade_count)
from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask")
    paths = [itch.generate(d / f"day{i}.itch", messages=20_000, symbols=3, seed=i)
             for i in range(3)]
    paths.append(generate_mbo(d / "mbo.dbn.zst", records=8000, instruments=5, seed=4))
    paths.append(generate_mbo(d / "mbo2.dbn", records=4000, instruments=2, seed=5))
    return paths


@pytest.fixture(scope="module")
def client():
    # Threads keep the module quick; one test below starts worker processes.
    c = connect("local", workers=2, processes=False)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def assert_same(a, b):
    assert a.file == b.file and a.format == b.format
    assert a.stats == b.stats
    assert a.symbols == b.symbols
    assert a.hashes == b.hashes
    assert np.array_equal(a.trades, b.trades)
    assert np.array_equal(a.tob, b.tob)
    assert np.array_equal(a.snapshots, b.snapshots)


def test_dask_replay_files_identical_to_serial(files, client):
    serial = replay_serial(files, snapshot_every_ns=50_000_000)
    seen = []
    res = replay_files(files, client, snapshot_every_ns=50_000_000,
                       progress=lambda done, total: seen.append((done, total)))
    assert [f.file for f in res.files] == [str(p) for p in files]
    for a, b in zip(serial.files, res.files):
        assert_same(a, b)
    assert res.totals == serial.totals
    assert seen[-1] == (len(files), len(files))
    # and the serial results are the plain replay's
    direct = itch.replay_file(files[0])
    assert serial.files[0].stats == direct.stats
    assert serial.files[0].hashes == {k: b.state_hash() for k, b in direct.books.items()}
    assert res.files[0].book(next(iter(direct.books))).state_hash() == \
        next(iter(direct.books.values())).state_hash()


def test_dask_replay_split_dbn_file_identical_to_whole(files, client):
    whole = replay_dbn(files[3], snapshot_every_ns=10_000_000)
    res = replay_files([files[3]], client, split=3, snapshot_every_ns=10_000_000)
    f = res.files[0]
    assert f.parts == 3
    assert f.stats == whole.stats
    assert f.hashes == {k: b.state_hash() for k, b in whole.books.items()}
    assert np.array_equal(f.trades, whole.trades())
    assert np.array_equal(f.tob, whole.tob())
    assert np.array_equal(f.snapshots, whole.snapshots())


def test_dask_replay_split_itch_files_identical_to_whole(files, client):
    res = replay_files([files[0], files[4]], client, split=2)
    assert [f.parts for f in res.files] == [2, 2]
    serial = replay_serial([files[0], files[4]])
    for a, b in zip(serial.files, res.files):
        assert a.stats == b.stats and a.hashes == b.hashes and a.symbols == b.symbols
        assert np.array_equal(a.trades, b.trades) and np.array_equal(a.tob, b.tob)
    with pytest.raises(ValueError, match="symbols"):
        replay_one(files[0], partition=(0, 2), symbols=["AAPL"])
    with pytest.raises(ValueError, match="without snapshots"):
        replay_files([files[0]], client, split=2, snapshot_every_ns=10**9)


def test_dask_replay_split_real_itch_counts_unknown_refs_once(client):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "itch" / \
        "aapl-20191230-0935.itch50"
    if not path.exists():
        pytest.skip(f"shared market data not found at {path}")
    whole = itch.replay_file(path)
    assert whole.stats["unknown_refs"] > 0       # orders added before the file starts
    res = replay_files([path], client, split=3)
    assert res.files[0].stats == whole.stats
    assert res.files[0].hashes == {k: b.state_hash() for k, b in whole.books.items()}


def test_dask_replay_split_shares_partition_instruments(files):
    parts = [replay_one(files[3], partition=(k, 2)) for k in range(2)]
    assert set(parts[0].books).isdisjoint(parts[1].books)
    assert merge_parts(parts).stats["open_orders"] == replay_dbn(files[3]).stats["open_orders"]


def test_dask_replay_bad_arguments_raise_before_any_task(files, client, tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        replay_files([tmp_path / "missing.itch"], client)
    with pytest.raises(ValueError, match="snapshot_every_ns"):
        replay_files([files[3]], client, split=2, snapshot_every=100)
    with pytest.raises(ValueError, match="no files"):
        replay_files([], client)


@pytest.mark.parametrize("which, bad", [
    (0, {"bogus": 1}), (3, {"bogus": 1}), (0, {"snapshot_depth": 0}), (3, {"snapshot_depth": 0}),
    (0, {"callback_every": -1}), (0, {"tob_on_last": False}), (3, {"infer_lengths": True}),
    (3, {"max_books": 0}), (0, {"chunk_size": 4096}), (3, {"chunk_size": 10}),
    (3, {"ts_out": True}), (0, {"until_ns": -1}),
    # a chunk_size that is no whole number passed the check and failed on every worker
    (0, {"chunk_size": (1 << 20) + 0.5}), (3, {"chunk_size": 5000.5}),
    (3, {"chunk_size": "8192"})], ids=str)
def test_dask_replay_bad_option_raises_replayer_error_before_any_cluster(files, monkeypatch,
                                                                          which, bad):
    import matchcore.cluster.dask as cdask

    with pytest.raises(Exception) as on_worker:      # what every task would raise
        replay_one(files[which], **bad)

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started or connected to")

    monkeypatch.setattr(cdask, "connect", no_cluster)
    with pytest.raises(type(on_worker.value)) as local:
        replay_files([files[which]], "local", **bad)
    assert type(local.value) is type(on_worker.value)
    assert str(local.value) == str(on_worker.value)
    # with files of both formats (split: one check per format, not per task), an option
    # either format refuses is refused before any cluster too
    with pytest.raises((TypeError, ValueError)):
        replay_files([files[1], files[4]], "local", split=2, **bad)


def test_replay_chunk_size_not_whole_number_refused_naming_it(files):
    # "cannot convert 'float' object to bytearray" named no argument
    for which, size in ((0, (1 << 20) + 0.5), (3, 5000.5), (0, "131072")):
        with pytest.raises(TypeError, match=rf"^chunk_size must be a whole number of bytes, "
                                            rf"not {re.escape(repr(size))}$"):
            replay_one(files[which], chunk_size=size)


def test_dask_replay_worker_processes_identical_to_serial(files):
    res = replay_files(files[:2] + files[3:4], "local", workers=2, processes=True)
    serial = replay_serial(files[:2] + files[3:4])
    for a, b in zip(serial.files, res.files):
        assert_same(a, b)
    assert all(f.worker.startswith("pid ") for f in res.files)


def test_cli_replay_dask_local_writes_merged_outputs(files, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["replay", str(files[0]), str(files[3]), "--dask", "local", "--no-progress",
               "--split", "2", "--out", str(out), "--dump-book", str(tmp_path / "books.csv")])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "replayed 2 files on the Dask cluster local" in text and "(dbn, 2 tasks)" in text
    summary = json.loads((out / "summary.json").read_text())
    assert [f["format"] for f in summary["files"]] == ["itch", "dbn"]
    assert summary["files"][1]["stats"] == json.loads(json.dumps(replay_dbn(files[3]).stats))
    direct = itch.replay_file(files[0])
    assert summary["files"][0]["stats"]["messages"] == direct.stats["messages"]
    assert np.array_equal(np.load(out / "day0" / "trades.npy"), direct.trades())
    rows = (tmp_path / "books.csv").read_text().splitlines()
    assert rows[0].startswith("file,locate,symbol") and len(rows) > 10


def test_cli_replay_several_files_out_writes_system_events_and_trading_state(files, tmp_path):
    # one ITCH file's --out holds system_events.npy and the trading state; several files'
    # dropped both, with --split too
    for split in (["--dask", "local", "--split", "2"], []):
        out = tmp_path / f"out{len(split)}"
        assert main(["replay", str(files[0]), str(files[3]), "--no-progress", "--out", str(out)]
                    + split) == 0
        direct = itch.replay_file(files[0])
        assert len(direct.system_events) > 0
        saved = np.load(out / "day0" / "system_events.npy")
        assert saved.tobytes() == direct.system_events.tobytes()
        summary = json.loads((out / "summary.json").read_text())
        assert summary["files"][0]["trading_state"] == \
            {str(k): list(v) for k, v in direct.trading_state.items()}
        assert not (out / "mbo").joinpath("system_events.npy").exists()
        assert "trading_state" not in summary["files"][1]


def test_cli_replay_several_files_without_dask_sums_up(files, capsys):
    rc = main(["replay", str(files[1]), str(files[4]), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0 and "replayed 2 files in this process" in text
    assert "mbo2.dbn (dbn)" in text


def test_dask_replay_split_merged_sinks_same_bytes_as_whole_padding_zero(files):
    # numpy's concatenate and fancy indexing copy records field by field and leave the padding
    # of TOB/TRADE records uninitialised: the merged arrays of a split file carried heap bytes
    # (the saved tob.npy / trades.npy differed from the whole replay's and between runs)
    for path in (files[3], files[0]):
        # churn the heap with non-zero bytes, so uninitialised memory is not zero by chance
        junk = [b"\xff" * (1 << 16) for _ in range(64)]
        del junk
        whole = replay_serial([path]).files[0]
        split = replay_serial([path], split=3).files[0]
        for name in ("tob", "trades"):
            a, b = getattr(whole, name), getattr(split, name)
            assert len(a) > 0 and np.array_equal(a, b), name
            assert a.tobytes() == b.tobytes(), name


def test_cli_replay_several_files_same_name_dump_book_rows_tell_files_apart(files, tmp_path,
                                                                             capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "day.itch").write_bytes(files[0].read_bytes())
    (b / "day.itch").write_bytes(files[1].read_bytes())
    out = tmp_path / "books.csv"
    rc = main(["replay", str(a / "day.itch"), str(b / "day.itch"), "--no-progress",
               "--dump-book", str(out)])
    assert rc == 0, capsys.readouterr().out
    import csv
    rows = list(csv.DictReader(out.read_text().splitlines()))
    by_file = {}
    for r in rows:
        by_file.setdefault(r["file"], []).append(r)
    assert sorted(by_file) == sorted([str(a / "day.itch"), str(b / "day.itch")])
    for path in (a / "day.itch", b / "day.itch"):
        books = itch.replay_file(path).books
        levels = sum(len(x) for bk in books.values() for x in bk.depth_orders(1 << 30))
        assert len(by_file[str(path)]) == levels > 0


def test_dask_replay_split_timestamps_stepping_back_keep_each_book_in_file_order(tmp_path):
    # A merge by each record's own time moved a book's records past each other where the
    # file's timestamps step back (damage, a feed not sorted by ts_recv): the split replay's
    # top-of-book series of one book was no longer the order the book changed in.
    from matchcore.feeds.dbn_gen import _metadata, mbo_record

    P = 100 * 10**9
    recs = [mbo_record(1, 1000, 1, P, 5, "A", "B"),
            mbo_record(2, 1100, 2, P, 5, "A", "B"),
            mbo_record(1, 5000, 3, P + 10**9, 5, "A", "A"),
            mbo_record(1, 2000, 4, P + 10**7, 3, "A", "B"),     # steps back in time
            mbo_record(2, 3000, 5, P + 10**9, 5, "A", "A"),
            mbo_record(1, 2500, 3, P + 10**9, 5, "C", "A"),
            mbo_record(2, 6000, 2, P, 5, "C", "B")]
    path = tmp_path / "back.dbn"
    path.write_bytes(_metadata({1: "X", 2: "Y"}, False, 0, 10) + b"".join(recs))
    whole = replay_serial([path]).files[0]
    assert len(whole.tob) == len(recs)
    for n in (2, 3):
        split = replay_serial([path], split=n).files[0]
        assert split.stats == whole.stats and split.hashes == whole.hashes
        for loc in whole.books:
            for name in ("tob", "trades"):
                a, b = getattr(whole, name), getattr(split, name)
                assert np.array_equal(a[a["locate"] == loc], b[b["locate"] == loc]), (n, name)


def _spawned_workers():
    """The worker processes (multiprocessing's spawn children) below this one. A process that
    ends between the listing and the reading of its command line is not among them: the read
    raised NoSuchProcess, and did so while a cluster shutting down reaped its workers."""
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def test_cli_replay_dask_worker_killed_mid_task_names_file_and_exits_1(tmp_path, capsys):
    # A task whose worker died (KilledWorker) left the command with a traceback naming only a
    # task key: which of the files killed its workers was not said.
    import errno
    import os
    import signal
    import threading
    import time

    import dask

    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    box = {}

    def run():
        box["rc"] = main(["replay", str(fifo), "--format", "itch", "--dask", "local",
                          "--no-progress", "--out", str(out)])

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        t = threading.Thread(target=run, daemon=True)
        t.start()
        # the task is running once its worker has the FIFO open for reading
        deadline = time.monotonic() + 120
        while True:
            try:
                w = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                assert e.errno == errno.ENXIO and time.monotonic() < deadline and t.is_alive()
                time.sleep(0.05)
        try:
            workers = _spawned_workers()
            assert workers
            for p in workers:
                p.send_signal(signal.SIGKILL)
            t.join(120)
        finally:
            os.close(w)
    assert not t.is_alive()
    err = capsys.readouterr().err
    assert box["rc"] == 1
    assert f"matchcore replay: error: {fifo}: every worker that ran its replay died" in err
    assert "Traceback" not in err and not out.exists()
    # the cluster was shut down: no worker process is left
    deadline = time.monotonic() + 30
    while _spawned_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _spawned_workers()


def test_dask_replay_split_itch_stock_named_as_a_number_kept_in_one_share(tmp_path):
    # A share was given to the replayer as locate numbers in its symbols filter, which also
    # matches names: a stock named "2" at locate 1 was kept by share 0 (by name) and share 1
    # (by number), its book built twice, its trades and open orders counted twice.
    import struct

    raw = bytearray(itch.generate(None, messages=6000, symbols=3, seed=2))
    pos = renamed = 0
    while pos + 2 <= len(raw):
        n = struct.unpack_from(">H", raw, pos)[0]
        m = pos + 2
        if raw[m:m + 1] == b"R" and struct.unpack_from(">H", raw, m + 1)[0] == 1:
            raw[m + 11:m + 19] = b"2       "
            renamed += 1
        pos = m + n
    assert renamed == 1
    path = tmp_path / "numbered.itch"
    path.write_bytes(bytes(raw))
    whole = replay_serial([path]).files[0]
    assert whole.symbols[1] == "2" and 2 in whole.books
    for n in (2, 3):
        split = replay_serial([path], split=n).files[0]
        assert split.stats == whole.stats and split.hashes == whole.hashes
        assert np.array_equal(split.trades, whole.trades)
        assert np.array_equal(split.tob, whole.tob)
    with pytest.raises(ValueError, match="partition"):
        itch.Replayer(partition=(2, 2))
    with pytest.raises(TypeError, match="partition"):
        replay_serial([path], partition=(0, 2))


def test_dask_replay_relative_paths_read_from_caller_directory_not_worker(tmp_path, monkeypatch):
    # A relative path went to the workers as given and was opened against the worker's own
    # directory: after the caller changed directory (or on another machine) a task replayed
    # another file of the same name, reported under the caller's path.
    import os

    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    itch.generate(there / "day.itch", messages=3000, symbols=2, seed=11)    # a decoy
    itch.generate(here / "day.itch", messages=5000, symbols=3, seed=12)
    monkeypatch.chdir(there)
    c = connect("local", workers=1, processes=True)        # the worker starts in 'there'
    try:
        os.chdir(here)
        res = replay_files(["day.itch"], c)
    finally:
        cluster = c.cluster
        c.close()
        cluster.close()
    want = itch.replay_file(here / "day.itch")
    f = res.files[0]
    assert f.file == "day.itch"
    assert f.stats == want.stats
    assert f.hashes == {k: b.state_hash() for k, b in want.books.items()}


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_dask_replay_local_cluster_without_workers_refused_not_hung(files, monkeypatch, workers):
    # workers=0 started a LocalCluster that took the tasks and never ran them
    import matchcore.cluster.dask as cdask

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(cdask, "_require_dask", no_cluster)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        replay_files(files[:1], "local", workers=workers)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        connect("local", workers=workers)


@pytest.mark.timeout(60)        # before, the detection's open waited for a writer for ever
def test_dask_replay_fifo_without_fmt_refused_before_reading_it(tmp_path):
    # Detecting the format read (and so consumed) the first bytes of a FIFO: the replay then
    # started inside the stream or waited for a writer that had already left.
    import os

    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="pipe or device.*give fmt"):
        replay_serial([fifo])            # no writer: an open would have blocked
    with pytest.raises(ValueError, match="pipe or device.*give fmt"):
        replay_files([fifo], "local")


def test_dask_replay_one_missing_file_not_called_a_pipe(tmp_path):
    # a path that does not exist (or a symlink to nothing) was "a pipe or device"
    from matchcore.cluster.dask import detect_format

    (tmp_path / "dangling.itch").symlink_to(tmp_path / "nowhere")
    for p in (tmp_path / "missing.itch", tmp_path / "dangling.itch"):
        for call in (detect_format, replay_one):
            with pytest.raises(FileNotFoundError, match="No such file"):
                call(p)


def test_dask_replay_single_path_not_in_a_list_refused_by_name(files):
    # a str was iterated as paths: "no such file: /" (its first character)
    for one in (str(files[0]), files[0]):
        with pytest.raises(TypeError, match="list of files, not a single path"):
            replay_serial(one)
        with pytest.raises(TypeError, match="list of files, not a single path"):
            replay_files(one, "local")


def test_cli_replay_several_files_one_not_dbn_error_names_that_file(files, tmp_path, capsys):
    # "not a DBN stream (starts with b'')" did not say which of the files it was
    bad = tmp_path / "empty.dbn"
    bad.write_bytes(b"")
    rc = main(["replay", str(files[0]), str(bad), str(files[3]), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"error: {bad}: an empty file" in err
    bad.write_bytes(b"\0" * 64)            # named DBN, not DBN inside
    rc = main(["replay", str(files[0]), str(bad), str(files[3]), "--no-progress"])
    assert rc == 1 and f"error: {bad}: not a DBN stream" in capsys.readouterr().err


def test_dask_replay_gzip_dbn_file_replayed_as_dbn_same_as_plain(files, client, tmp_path):
    # detected on the client as ITCH (gzip'd), the task replayed it as such: zero messages
    import gzip

    gz = tmp_path / "mbo2.dbn.gz"
    gz.write_bytes(gzip.compress(files[4].read_bytes()))
    res = replay_files([gz, files[4]], client)
    a, b = res.files
    assert a.format == b.format == "dbn" and a.stats["messages"] == 4000
    assert a.stats == b.stats and a.hashes == b.hashes and np.array_equal(a.trades, b.trades)


@pytest.mark.parametrize("which", [0, 3])
def test_dask_replay_empty_symbols_refused_before_any_cluster_cli_too(files, which, capsys):
    # symbols=[] replayed every file with no book at all, where a NATS consumer took it for
    # every symbol: refused as the replayer refuses it, before a cluster is started
    with pytest.raises(ValueError, match="symbols is empty"):
        replay_serial([files[which]], symbols=[])
    with pytest.raises(ValueError, match="symbols is empty"):
        replay_files([files[which]], "local", symbols=[])
    assert main(["replay", str(files[which]), str(files[which + 1]), "--symbols", ","]) == 1
    assert "--symbols ',' names nothing" in capsys.readouterr().err


def test_cli_replay_dask_symbols_noted_labels_checked_per_file_as_one_file(files, client,
                                                                          capsys):
    # --dask gave no note for a selected name or number a file lacks, and kept a label whose
    # locate carries another name (its book summed up under the label), where one file's
    # replay notes the first and refuses the second
    day0, dbn = files[0], files[3]
    names = itch.replay_file(day0).symbols
    other = next(n for L, n in names.items() if L != 1)
    dbn_names = replay_dbn(dbn).symbols
    address = client.scheduler.address
    rc = main(["replay", str(day0), str(dbn), "--dask", address, "--no-progress",
               "--symbols", f"{other}@locate1"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"no book '{other}@locate1' in {day0}: locate 1 is '{names[1]}'" in err
    known = next(iter(dbn_names.values()))
    rc = main(["replay", str(day0), str(dbn), "--dask", address, "--no-progress",
               "--symbols", f"{names[1]}@locate1,{known},NOPE,60000"])
    out = capsys.readouterr().out
    assert rc == 0, out
    # DBN: a label is no name of its; a number is judged against the instrument ids
    assert [line for line in out.splitlines() if line.startswith("note:")] == [
        f"note: no symbol named {known}, NOPE in {day0}",
        f"note: no symbol numbered 60000 in {day0}",
        f"note: no symbol named {names[1]}@locate1, NOPE in {dbn}",
        f"note: no symbol numbered 60000 in {dbn}"]


@pytest.mark.parametrize("extra", [[], ["--split", "2"]])
def test_cli_replay_dask_empty_scheduler_refused_not_replayed_in_process(files, capsys, extra):
    # `--dask "$SCHEDULER"` with the variable unset: one file was replayed in this process and
    # reported as such (exit 0), and with --split the error said "--split needs --dask"
    rc = main(["replay", str(files[4]), "--dask", "", "--no-progress", *extra])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out
    assert "scheduler must be 'local' or a scheduler address such as tcp://host:8786, " \
           "not ''" in err
    with pytest.raises(ValueError, match="not ' '"):
        replay_files([files[4]], " ")


def test_dask_connect_client_failing_closes_the_local_cluster_it_started(monkeypatch):
    import distributed
    import distributed.deploy

    started = []

    class Recorded(distributed.LocalCluster):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            started.append(self)

    async def refuse(*a, **k):
        raise OSError("client refused")

    monkeypatch.setattr(distributed, "LocalCluster", Recorded)
    monkeypatch.setattr(distributed.deploy, "LocalCluster", Recorded)
    monkeypatch.setattr(distributed.Client, "_ensure_connected", refuse)
    with pytest.raises(OSError, match="client refused"):
        connect("local", workers=1, processes=False)
    assert len(started) == 1 and started[0].status.name == "closed"


def test_dask_connect_local_closing_the_client_closes_its_cluster():
    # connect() says "close it when done": closing the client left the LocalCluster it had
    # started (scheduler and worker processes) running until the interpreter exited
    c = connect("local", workers=1, processes=False)
    cluster = c.cluster
    assert cluster.status.name == "running"
    c.close()
    assert cluster.status.name == "closed"


@pytest.mark.parametrize("split", [1025, 1_000_000])
def test_dask_replay_split_beyond_cap_refused_before_any_task_cli_too(files, split, capsys):
    from matchcore.cluster.dask import MAX_SPLIT

    assert MAX_SPLIT == 1024
    for run in (replay_serial, replay_files):
        with pytest.raises(ValueError, match=rf"split must be at most 1024, not {split}"):
            run([files[0]], split=split)
    rc = main(["replay", str(files[0]), "--dask", "local", "--split", str(split),
               "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out and "split must be at most 1024" in err


def test_dask_connect_refused_scheduler_address_fails_naming_the_refusal():
    from matchcore.io.nats import free_port

    addr = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(OSError, match=rf"cannot connect to the Dask scheduler at {addr}: "
                                      rf"connection refused"):
        connect(addr)


def test_bench_dask_script_removes_its_generated_files(tmp_path, monkeypatch, capsys):
    # benchmarks/bench_dask.py wrote its ITCH days and DBN files into a mkdtemp() directory it
    # never removed: every run left them behind (hundreds of MB at the default sizes)
    import importlib.util
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(root))
    spec = importlib.util.spec_from_file_location("bench_dask", root / "bench_dask.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rc = mod.main(["--files", "2", "--messages", "20000", "--symbols", "2", "--workers", "1",
                   "--repeat", "1", "--dbn-records", "2000"])
    out = capsys.readouterr().out
    assert rc == 0 and "results identical" in out and "DBN MBO file" in out
    assert list(tmp_path.glob("bench-dask-*")) == []


@pytest.mark.parametrize("which", [[0], [0, 3], [3, 0]], ids=["itch", "itch+dbn", "dbn+itch"])
def test_dask_replay_split_itch_snapshot_every_refused_without_advising_snapshot_every_ns(
        files, which, capsys, tmp_path):
    # the refusal of snapshot_every with split advised snapshot_every_ns, which ITCH files then
    # refused too ("split without snapshots"), and spoke of DBN instruments of an ITCH file
    paths = [files[i] for i in which]
    for run in (replay_serial, replay_files):
        with pytest.raises(ValueError, match="ITCH files") as e:
            run(paths, split=2, snapshot_every=1000)
        assert "snapshot_every_ns" not in str(e.value)
    rc = main(["replay", *map(str, paths), "--dask", "local", "--split", "2",
               "--snapshot-every", "1000", "--out", str(tmp_path / "o"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "ITCH files" in err and "snapshot_every_ns" not in err



def test_dask_replay_split_fifo_refused_before_any_share_reads_it(client, tmp_path, capsys,
                                                                  monkeypatch):
    # every share reads the whole file: from a FIFO the first share took the stream and the
    # others got another writer's, none, or waited for one. On a LocalCluster the shares read
    # it at once, each a part: 2 of 5 books, 910 of 2,610 trades, exit status 0.
    import os

    import matchcore.cluster.dask as dask_mod

    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)

    def opened(*a, **k):
        raise AssertionError("a share of the FIFO was replayed")

    with monkeypatch.context() as m:
        m.setattr(dask_mod, "replay_one", opened)
        with pytest.raises(ValueError, match=r"pipe or device.*split"):
            replay_serial([fifo], fmt="itch", split=2)
        with pytest.raises(ValueError, match=r"pipe or device.*split"):
            replay_files([fifo], client, fmt="itch", split=2)
    rc = main(["replay", str(fifo), "--format", "itch", "--dask", "local", "--split", "2",
               "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out and "split" in err


def test_dask_replay_cluster_object_given_left_open_same_results(files):
    # a cluster the caller made (distributed.Client(cluster) is the usual idiom) was shut down
    # by replay_files(paths, cluster): the caller's scheduler and workers were gone afterwards
    import distributed

    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address="127.0.0.1:0")
    try:
        res = replay_files(files[:2], cluster)
        assert cluster.status.name == "running"
        serial = replay_serial(files[:2])
        for a, b in zip(serial.files, res.files):
            assert_same(a, b)
        with distributed.Client(cluster) as c:       # still usable
            assert c.submit(sum, [1, 2]).result() == 3
    finally:
        cluster.close()


def test_dask_replay_numpy_integer_workers_taken_as_split_is(files):
    # split=np.int64(2) was taken and workers=np.int64(1) refused with "workers must be an
    # integer >= 1, not 1"
    res = replay_files(files[:1], "local", workers=np.int64(1), split=np.int64(2),
                       processes=False)
    assert res.files[0].parts == 2
    assert res.files[0].stats == replay_serial(files[:1]).files[0].stats


def test_dask_replay_descriptor_of_this_process_refused_before_any_cluster(tmp_path, capsys):
    # `replay <(zcat day.itch.gz) --dask ...` sent /dev/fd/63 to the workers: in a worker
    # process that name is the worker's own descriptor 63, no such file or one of its own
    # files read as market data
    import os

    r, w = os.pipe()
    try:
        for p in (f"/dev/fd/{r}", f"/proc/self/fd/{r}", "/dev/stdin"):
            with pytest.raises(ValueError, match="descriptor of this process"):
                replay_files([p], "tcp://127.0.0.1:1", fmt="itch")
        rc = main(["replay", f"/dev/fd/{r}", "--format", "itch", "--dask", "local",
                   "--no-progress"])
        out, err = capsys.readouterr()
        assert rc == 1 and out == "" and "descriptor of this process" in err
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("step", ["_start", "_close"], ids=["starts", "closes"])
def test_cli_replay_dask_local_interrupted_while_cluster_starts_or_closes_one_line_closed(
        files, step):
    # Ctrl-C while the LocalCluster was starting left it half started: the client was never
    # made, so nothing closed it, and Dask's own exit hook then failed on its workers with a
    # traceback (AssertionError: Status.init) after the "interrupted" line. Ctrl-C while it
    # was being closed (the replay done, or a task failed) stopped the close half way: the
    # interpreter's exit then waited 60 s on Dask's own close of the cluster left running and
    # printed its tracebacks (CancelledError, "TimeoutError: timed out after 60 s").
    import subprocess
    import sys

    script = f"""
import os, signal, sys
from distributed.deploy.spec import SpecCluster

step = SpecCluster.{step}

async def interrupted(self):
    os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C while the cluster starts or closes
    await step(self)

SpecCluster.{step} = interrupted
from matchcore.__main__ import main

code = main(["replay", {str(files[0])!r}, {str(files[1])!r}, "--dask", "local",
             "--no-progress"])
left = [c for c in SpecCluster._instances if c.status.name != "closed"]
print(f"clusters left running: {{len(left)}}", file=sys.stderr)
sys.exit(code)
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=180)
    lines = [x for x in p.stderr.splitlines() if " - distributed." not in x]
    assert p.returncode == 130, p.stderr
    assert "replayed" not in p.stdout
    if step == "_close":
        assert p.stdout.startswith("interrupted after 2 of 2 files in "), p.stdout
    assert lines == ["matchcore replay: interrupted by SIGINT",
                     "clusters left running: 0"], p.stderr


def test_dask_replay_signal_held_while_closing_handler_that_returns_keeps_the_results(
        files, monkeypatch):
    # a signal that came while replay_files closed its own cluster goes to the caller's
    # handler once the close is done; one that does not raise leaves the results returned
    import os
    import signal

    from distributed.deploy.spec import SpecCluster

    close = SpecCluster._close
    seen, closed = [], []

    async def _close(self):
        if not closed:
            os.kill(os.getpid(), signal.SIGINT)
        closed.append(self)
        await close(self)

    monkeypatch.setattr(SpecCluster, "_close", _close)
    old = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        res = replay_files(files[:1], "local", workers=1, processes=False)
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen == [signal.SIGINT]
    assert_same(res.files[0], replay_serial(files[:1]).files[0])
    assert closed and all(c.status.name == "closed" for c in closed)


def test_dask_replay_scheduler_lost_mid_run_names_file_cli_one_line_exit_1(files, client,
                                                                            monkeypatch,
                                                                            capsys):
    # a scheduler that went away while the tasks ran (killed, the network) ended the command
    # with a traceback: Dask cancels the futures after its reconnection attempts, and the
    # FutureCancelledError went through uncaught
    import distributed
    from distributed.client import FutureCancelledError

    def lost(self, timeout=None):
        raise FutureCancelledError(self.key, "scheduler-connection-lost",
                                   "Client lost the connection to the scheduler.")

    import re

    monkeypatch.setattr(distributed.Future, "result", lost)
    # the first task to finish names its file: either one
    either = f"({re.escape(str(files[0]))}|{re.escape(str(files[1]))})"
    said = rf"{either}: the connection to the Dask scheduler was lost before its replay finished"
    with pytest.raises(ConnectionError, match=said):
        replay_files(files[:2], client)
    rc = main(["replay", str(files[0]), str(files[1]), "--dask", client.scheduler.address,
               "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out
    assert re.fullmatch(rf"matchcore replay: error: {said}, so no results are returned\n", err)


def test_dask_connect_signal_held_while_cluster_starts_handler_that_returns_keeps_client(
        monkeypatch):
    # a signal held while the cluster started goes to the caller's handler afterwards; one
    # that does not raise leaves the client it asked for open, not closed under it
    import os
    import signal

    from distributed.deploy.spec import SpecCluster

    start = SpecCluster._start
    seen = []

    async def _start(self):
        os.kill(os.getpid(), signal.SIGINT)
        await start(self)

    monkeypatch.setattr(SpecCluster, "_start", _start)
    old = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        c = connect("local", workers=1, processes=False)
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        assert seen == [signal.SIGINT]
        assert c.status == "running" and c.cluster.status.name == "running"
        assert c.submit(sum, [1, 2]).result() == 3
    finally:
        cluster = c.cluster
        c.close()
        cluster.close()


def test_cli_replay_several_files_out_subdirectory_taken_by_a_file_refused_before_replay(
        files, tmp_path, capsys):
    # DIR/<name> of a file's sinks being a file was found after the whole replay (on a
    # cluster, after every task): the summary printed, the dump written, the sinks of the files
    # before it written, no summary.json, and "[Errno 17] File exists" as the reason
    out = tmp_path / "out"
    out.mkdir()
    (out / "day1").write_text("keep")
    dump = tmp_path / "book.csv"
    rc = main(["replay", str(files[0]), str(files[1]), "--out", str(out), "--dump-book",
               str(dump), "--no-progress"])
    stdout, err = capsys.readouterr()
    assert rc == 1 and stdout == ""
    assert err == (f"matchcore replay: error: --out {out}: {out / 'day1'} exists and is not a "
                   f"directory (the sinks of {files[1]} go there)\n")
    assert sorted(p.name for p in out.iterdir()) == ["day1"] and not dump.exists()


def test_replay_several_files_dbn_execution_counted_once_not_per_t_and_f(files, tmp_path,
                                                                         capsys):
    # Databento reports one execution as a T record (the aggressor) and an F record per
    # resting order filled: the trade counts of several files (each file's line, the totals,
    # summary.json) counted both, twice the executions; the trade sink keeps both records.
    res = replay_serial([files[1], files[4]])
    dbn = res.files[1]
    kinds = dbn.trades["kind"]
    executions = int((kinds == b"T").sum())
    assert executions and int((kinds == b"F").sum()) == executions
    assert len(dbn.trades) == 2 * executions
    assert res.totals["trades"] == len(res.files[0].trades) + executions
    rc = main(["replay", str(files[1]), str(files[4]), "--no-progress", "--out",
               str(tmp_path / "o")])
    text = capsys.readouterr().out
    assert rc == 0
    assert f", {res.totals['trades']:,} trades, " in text.splitlines()[0]
    line = next(x for x in text.splitlines() if "mbo2.dbn (dbn)" in x)
    assert f", {executions:,} trades, " in line
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["totals"]["trades"] == res.totals["trades"]
    # a venue that reports fills only: each F is one execution
    fills = dbn.trades[kinds == b"F"]
    assert trade_count(fills) == executions


def test_cli_replay_several_files_summary_dbn_entry_has_instruments_and_metadata(files,
                                                                                 tmp_path):
    # One DBN file's summary.json has its instruments, metadata and price scale; the entry of
    # a DBN file in a replay of several files had neither, its book numbers unmappable to ids.
    rc = main(["replay", str(files[3]), "--no-progress", "--out", str(tmp_path / "one")])
    assert rc == 0
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    rc = main(["replay", str(files[0]), str(files[3]), "--no-progress", "--out",
               str(tmp_path / "many")])
    assert rc == 0
    itch_entry, dbn_entry = json.loads((tmp_path / "many" / "summary.json").read_text())["files"]
    for key in ("instruments", "metadata", "price_scale"):
        assert dbn_entry[key] == one[key], key
        assert key not in itch_entry
    assert dbn_entry["metadata"]["dataset"] == "GLBX.MDP3" and len(dbn_entry["instruments"]) == 5


@pytest.mark.parametrize("which", [0, 3])
def test_replay_partition_takes_numpy_integers_as_ints(files, which):
    # (np.int64(0), 2), as np.arange(n) gives the shares, was refused with "partition must be
    # (k, n) with 0 <= k < n < 2**63", which it is: a numpy integer is an integer everywhere
    # else (the books, the replayers' other options); bools stay refused
    for k in range(2):
        ints = replay_one(files[which], partition=(k, 2))
        for kind in (np.int64, np.uint16, np.intp):
            got = replay_one(files[which], partition=(kind(k), kind(2)))
            assert got.stats == ints.stats and got.hashes == ints.hashes
    from matchcore.feeds.dbn import DbnReplayer

    make = itch.Replayer if which == 0 else DbnReplayer
    for bad in ((np.True_, 2), (0, np.bool_(True)), (np.float64(0), 2)):
        with pytest.raises(TypeError, match=r"^partition must be \(k, n\) of integers"):
            make(partition=bad)


def test_dask_replay_progress_not_callable_refused_before_any_task(files):
    # progress=5 replayed the first file (on a cluster: started it and ran a task) and then
    # raised "'int' object is not callable"
    for run in (lambda: replay_serial(files[:2], progress=5),
                lambda: replay_files(files[:2], "tcp://127.0.0.1:1", progress=5)):
        with pytest.raises(TypeError, match=r"^progress must be callable\(done, total\) or "
                                            r"None, got int 5$"):
            run()


def _damaged_gz(path):
    import gzip

    data = bytearray(gzip.compress(itch.generate(None, messages=3000, symbols=2, seed=7)))
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_dask_replay_task_error_names_the_path_as_given_as_serial(client, tmp_path,
                                                                   monkeypatch):
    # a task that raised named the absolute path the worker was sent; the serial replay names
    # the path as given
    _damaged_gz(tmp_path / "bad.itch.gz")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as serial:
        replay_serial(["bad.itch.gz"])
    with pytest.raises(ValueError) as dask:
        replay_files(["bad.itch.gz"], client)
    assert str(serial.value).startswith("bad.itch.gz: damaged gzip stream")
    assert str(dask.value) == str(serial.value)


def test_cli_replay_dask_local_task_error_one_line_no_worker_traceback(files, tmp_path):
    # each worker logged Dask's "Compute Failed ... Traceback" block (7 lines) on stderr before
    # the command's one error line
    import subprocess
    import sys

    bad = _damaged_gz(tmp_path / "bad.itch.gz")
    p = subprocess.run([sys.executable, "-m", "matchcore", "replay", str(bad), str(files[0]),
                        "--dask", "local", "--no-progress"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 1 and "replayed" not in p.stdout
    assert "Compute Failed" not in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.splitlines()[-1].startswith(
        f"matchcore replay: error: {bad}: damaged gzip stream"), p.stderr


@pytest.mark.parametrize("kw", [dict(workers=3), dict(processes=False),
                                dict(workers=1, processes=True)])
def test_dask_replay_workers_processes_for_a_scheduler_address_refused_not_ignored(
        files, client, monkeypatch, kw):
    # workers= and processes= shape the LocalCluster started here; with an address (or a
    # client) they were taken and ignored
    import matchcore.cluster.dask as cdask

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was connected to")

    with pytest.raises(ValueError, match=r"appl(y|ies) to scheduler='local'"):
        replay_files(files[:1], client, **kw)
    monkeypatch.setattr(cdask, "_require_dask", no_cluster)
    with pytest.raises(ValueError, match=r"appl(y|ies) to scheduler='local'.*tcp://127\.0\.0\.1:9"):
        replay_files(files[:1], "tcp://127.0.0.1:9", **kw)
    with pytest.raises(ValueError, match=r"appl(y|ies) to scheduler='local'"):
        connect("tcp://127.0.0.1:9", **kw)


@pytest.mark.timeout(60)
def test_dask_replay_scheduler_without_workers_fails_saying_so_not_hung(files, monkeypatch):
    # a scheduler with no worker took the tasks and the replay waited for ever
    import distributed

    import matchcore.cluster.dask as cdask

    monkeypatch.setattr(cdask, "WORKER_WAIT_S", 1.0)
    with distributed.LocalCluster(n_workers=0, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster:
        address = cluster.scheduler_address
        with pytest.raises(TimeoutError, match=rf"the Dask cluster at {address} has no workers"):
            replay_files(files[:1], address)
        with pytest.raises(TimeoutError, match="has no workers"):
            replay_files(files[:1], cluster)


@pytest.mark.parametrize("given", [["--workers", "0"], ["--repeat", "0"], ["--files", "0"],
                                   ["--messages", "-1"], ["--dbn-records", "0"]])
def test_bench_dask_script_bad_count_refused_before_generating_files(monkeypatch, capsys,
                                                                     given):
    # --workers 0 (or --repeat 0, --files 0) was found only after every ITCH day had been
    # generated (minutes at the default sizes), and ended in a traceback
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(root))
    spec = importlib.util.spec_from_file_location("bench_dask", root / "bench_dask.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def generate(*args, **kwargs):
        raise AssertionError("a file was generated")

    monkeypatch.setattr(mod.itch, "generate", generate)
    with pytest.raises(SystemExit) as exc:
        mod.main(given)
    assert exc.value.code == 2 and f"argument {given[0]}: " in capsys.readouterr().err


@pytest.mark.parametrize("which", ["serial", "files"])
def test_dask_replay_same_file_twice_refused_before_any_cluster(files, tmp_path, which):
    # the command refused it; the library replayed the file twice and counted it twice in the
    # totals (the same file through a symlink too)
    link = tmp_path / "link.itch"
    link.symlink_to(files[0])
    run = replay_serial if which == "serial" else lambda p: replay_files(p, "no-such-scheduler")
    with pytest.raises(ValueError, match=re.escape(
            f"paths: {files[0]} is given twice: its replay would be counted twice in the "
            f"totals")):
        run([files[0], files[1], files[0]])
    with pytest.raises(ValueError, match=re.escape(
            f"paths: {link} is given twice (the same file as {files[0]}): its replay would be "
            f"counted twice in the totals")):
        run([str(files[0]), str(link)])


@pytest.mark.parametrize("which", ["serial", "files", "one", "detect"])
def test_dask_replay_path_with_a_trailing_separator_refused(files, which):
    # "day0.itch/" names a directory: through Path the slash was dropped and the file read
    # (detect_format said "itch" of a path every replay refuses)
    from matchcore.cluster.dask import detect_format

    run = {"serial": replay_serial, "files": lambda p: replay_files(p, "no-such-scheduler"),
           "one": lambda p: replay_one(p[0]), "detect": lambda p: detect_format(p[0])}[which]
    with pytest.raises(ValueError, match=re.escape(
            f"{'paths' if which in ('serial', 'files') else 'path'}: {files[0]}/ names a "
            f"directory (it ends "
            f"with /), not a file")):
        run([str(files[0]) + "/"])


@pytest.mark.parametrize("which", ["serial", "files", "one", "detect"])
def test_dask_replay_empty_path_refused_not_taken_for_the_current_directory(which):
    # Path("") is ".": "Is a directory: '.'", of a directory nobody had named (detect_format
    # still said so)
    from matchcore.cluster.dask import detect_format

    run = {"serial": replay_serial, "files": lambda p: replay_files(p, "no-such-scheduler"),
           "one": lambda p: replay_one(p[0]), "detect": lambda p: detect_format(p[0])}[which]
    with pytest.raises(ValueError, match=re.escape(
            f"{'paths' if which in ('serial', 'files') else 'path'}: an empty path")):
        run(["", "x.itch"] if which in ("serial", "files") else [""])


def test_dask_replay_record_l2_refused_not_replayed_and_dropped(files, monkeypatch):
    import matchcore.cluster.dask as cdask

    # a FileResult carries no L2 sink: every task recorded the L2 changes and the result
    # dropped them, and the caller got no L2 record and no word
    for run in (lambda: replay_one(files[0], record_l2=True),
                lambda: replay_serial(files[:2], record_l2=True)):
        with pytest.raises(ValueError, match=r"record_l2: .*no L2 sink"):
            run()

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started or connected to")

    monkeypatch.setattr(cdask, "connect", no_cluster)
    with pytest.raises(ValueError, match=r"record_l2: .*no L2 sink"):
        replay_files(files[:2], "local", record_l2=True)
    # switched off it is what the replay does anyway
    assert replay_one(files[0], record_l2=False).stats == replay_one(files[0]).stats


@pytest.mark.parametrize("hook, what", [("callback", "a callback"),
                                        ("on_chunk", "an on_chunk hook")])
def test_dask_replay_per_chunk_hook_refused_as_callback_is(files, monkeypatch, hook, what):
    import matchcore.cluster.dask as cdask

    # on_chunk ran on the worker: in a worker process its calls (a ReplayMetrics.update, a
    # counter) happened in another process and the caller saw none, with worker threads it
    # was called; the replayer's callback was refused already
    calls = []

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started or connected to")

    monkeypatch.setattr(cdask, "connect", no_cluster)
    for run in (lambda: replay_files(files[:2], "local", **{hook: calls.append}),
                lambda: replay_serial(files[:2], **{hook: calls.append})):
        with pytest.raises(ValueError, match=rf"^{what} cannot run on a cluster worker"):
            run()
    assert calls == []


def test_dask_replay_task_error_on_callers_client_releases_the_other_tasks(files, tmp_path):
    # with the caller's client, a file that failed left the other files' tasks to run on and
    # their results (sinks and books) in the cluster's memory for as long as the client lived:
    # the exception's traceback holds replay_files' frame, and with it every future
    import time

    bad = _damaged_gz(tmp_path / "bad.itch.gz")
    c = connect("local", workers=1, processes=False)
    cluster = c.cluster
    try:
        with pytest.raises(ValueError, match="damaged gzip stream") as failed:
            replay_files([bad] + files[:3], c)
        assert failed.value.__traceback__ is not None     # held, as a caller holds it
        deadline = time.monotonic() + 30
        while (any(c.has_what().values()) or any(c.processing().values())) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(c.has_what().values())
        assert not any(c.processing().values())
        # the client goes on working
        res = replay_files(files[:1], c)
        assert res.files[0].stats == replay_serial(files[:1]).files[0].stats
    finally:
        c.close()
        cluster.close()


def test_bench_dask_script_same_trade_count_other_trades_differ(files, monkeypatch):
    # the script printed "results identical (stats, trades, book hashes)" when the trades only
    # numbered the same: a run with one fill at another price still read identical
    import dataclasses
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(root))
    spec = importlib.util.spec_from_file_location("bench_dask", root / "bench_dask.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a = replay_serial([files[0]])
    assert len(a.files[0].trades) > 1
    trades = a.files[0].trades.copy()
    trades["price"][0] += 1
    b = dataclasses.replace(a, files=[dataclasses.replace(a.files[0], trades=trades)])
    assert mod.same(a, replay_serial([files[0]]))
    assert not mod.same(a, b)


def test_local_cluster_log_filter_drops_task_failures_and_shutdown_heartbeats_only():
    # Under load, a worker of the cluster replay_files started logged "Failed to communicate
    # with scheduler during heartbeat" with a traceback as the cluster was shut down after a
    # task failed: the command's stderr then ended in a traceback after its one error line.
    # The scheduler of that cluster lives in the caller's process, so such a failure means
    # the cluster is closing; every other worker record is kept.
    import logging

    from matchcore.cluster._quiet import _TaskFailureFilter

    def record(msg, level=logging.ERROR):
        return logging.LogRecord("distributed.worker", level, __file__, 1, msg, None, None)

    f = _TaskFailureFilter()
    assert not f.filter(record("Compute Failed\nKey: x\nFunction: replay_one"))
    assert not f.filter(record("Failed to communicate with scheduler during heartbeat."))
    for kept in ("Unexpected exception during heartbeat. Closing worker.",
                 "Unmanaged memory use is high.",
                 "Scheduler was unaware of this worker; shutting down.",
                 "Heartbeat to scheduler failed", "failed to communicate"):
        assert f.filter(record(kept, logging.WARNING)), kept
    assert f.filter(logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1,
                                      RuntimeError("Compute Failed"), None, None))
    # the workers' state machine, as a worker closes with a task running (the cluster shut
    # down after another task failed, or a Ctrl-C): dropped, its other records kept
    closing = ("Async instruction for <Task cancelled name=\"execute('replay_one-1f2e')\" "
               "coro=<Worker.execute() done>> ended with CancelledError")
    machine = "distributed.worker.state_machine"
    assert not f.filter(logging.LogRecord(machine, logging.WARNING, __file__, 1, closing, None,
                                          None))
    for kept in ("Unhandled exception in async instruction for <Task ...>",
                 "Async instruction for <Task ...> ended with ValueError"):
        assert f.filter(logging.LogRecord(machine, logging.WARNING, __file__, 1, kept, None,
                                          None)), kept
    # (the worker's own logger drops only its own records)
    assert f.filter(record(closing, logging.WARNING))


def test_cli_replay_dask_local_task_error_while_another_runs_no_cancelled_task_warnings(
        tmp_path):
    # a file that failed while another file's task ran: the cluster is shut down, and each
    # worker that closed with a task running logged "Async instruction for <Task cancelled
    # name="execute('replay_one-...')" ...> ended with CancelledError" before the command's
    # one error line. The other task here waits in a FIFO no one writes to, so it is still
    # running when the cluster closes.
    import os
    import subprocess
    import sys

    bad = _damaged_gz(tmp_path / "bad.itch.gz")
    fifo = tmp_path / "waits.itch"
    os.mkfifo(fifo)
    p = subprocess.run([sys.executable, "-m", "matchcore", "replay", str(bad), str(fifo),
                        "--format", "itch", "--dask", "local", "--no-progress"],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 1 and "replayed" not in p.stdout
    assert "CancelledError" not in p.stderr and "Async instruction" not in p.stderr, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr.splitlines()[-1].startswith(
        f"matchcore replay: error: {bad}: damaged gzip stream"), p.stderr


_SECOND_CTRL_C_AT_CLOSE = r"""
import os, signal, sys


def spawned():
    import psutil

    found = 0
    for p in psutil.Process().children(recursive=True):
        try:
            found += "spawn_main" in " ".join(p.cmdline())
        except psutil.NoSuchProcess:
            pass
    return found


def main():
    import distributed
    from matchcore.cluster.dask import replay_files

    real, sent = distributed.Client._close, []

    async def close(self, *args, **kwargs):
        # (on the client's event loop) a second Ctrl-C while the main thread waits for the
        # close of the client and its cluster
        if not sent:
            sent.append(os.kill(os.getpid(), signal.SIGINT))
        return await real(self, *args, **kwargs)

    distributed.Client._close = close

    def progress(done, total):
        raise KeyboardInterrupt         # the first Ctrl-C, as the first task is in

    try:
        replay_files(sys.argv[1:], "local", progress=progress)
    except KeyboardInterrupt:
        print("interrupted", bool(sent), "workers left", spawned(), flush=True)


if __name__ == "__main__":
    main()
"""


@pytest.mark.timeout(300)
def test_dask_replay_local_second_ctrl_c_while_closing_cluster_still_closed(files, tmp_path):
    # Ctrl-C twice on `replay --dask local`: the second landed in the cluster's close, which it
    # cut short. The worker processes outlived the call, and Dask's exit hook then closed them
    # with a traceback, or hung (SIGKILL needed). The close now runs to its end first.
    import subprocess
    import sys

    script = tmp_path / "second_ctrl_c.py"
    script.write_text(_SECOND_CTRL_C_AT_CLOSE)
    proc = subprocess.run([sys.executable, str(script), *map(str, files[:2])], cwd=tmp_path,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240)
    assert (proc.returncode, proc.stdout) == (0, "interrupted True workers left 0\n")
    assert "Traceback" not in proc.stderr
