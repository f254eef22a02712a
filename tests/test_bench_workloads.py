"""The workload generators: deterministic per seed, valid (every cancel and reprice names a
resting order), shaped as documented, and importable without Numba at `import matchcore`."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matchcore as mc
from matchcore import workloads as W
from matchcore.bench import harness

SMALL = {
    "standard": {},
    "market_maker": {},
    "sweep": {"resting": 4_000, "levels": 400},
    "deep_book": {"resting": 20_000},
}


def _gen(name, n=6_000, seed=3, **extra):
    return W.generate(name, n, seed=seed, **{**SMALL[name], **extra})


@pytest.mark.parametrize("name", sorted(SMALL))
def test_workload_same_seed_identical_commands(name):
    a, b = _gen(name), _gen(name)
    assert a.setup.dtype == mc.COMMAND_DTYPE and a.flow.dtype == mc.COMMAND_DTYPE
    assert a.setup.tobytes() == b.setup.tobytes()
    assert a.flow.tobytes() == b.flow.tobytes()
    assert a.stats == b.stats


@pytest.mark.parametrize("name", sorted(SMALL))
def test_workload_other_seed_different_commands(name):
    assert _gen(name, seed=3).flow.tobytes() != _gen(name, seed=4).flow.tobytes()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_workload_replayed_no_order_not_found(name):
    w = _gen(name)
    assert len(w.flow) == 6_000
    assert harness.count_not_found(w.setup, w.flow) == 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_workload_replayed_book_matches_generator_book(name):
    w = _gen(name)
    book = mc.OrderBook()
    ev_setup = book.process(w.setup)
    ev = book.process(w.flow)
    book.check_invariants()
    assert book.state_hash() == w.stats["state_hash"]
    assert len(book) == w.stats["resting_at_end"]
    assert int(np.count_nonzero(ev["kind"] == mc.EventKind.REJECTED)) == 0
    cancels = int(np.count_nonzero(w.flow["kind"] == mc.CommandKind.CANCEL))
    assert int(np.count_nonzero(ev["kind"] == mc.EventKind.CANCELLED)) == cancels
    fills = np.count_nonzero(ev_setup["kind"] == mc.EventKind.FILL) + np.count_nonzero(
        ev["kind"] == mc.EventKind.FILL)
    assert int(fills) == w.stats["fills"]
    both = np.concatenate([w.setup, w.flow])
    assert w.stats["orders"] == int(np.count_nonzero(both["kind"] <= mc.CommandKind.MARKET))


@pytest.mark.parametrize("name", sorted(SMALL) + ["stale_cancel"])
def test_workload_first_id_near_int64_top_valid_or_refused(name):
    # ids are counted in int64: a first_id whose ids passed 2**63 - 1 gave a standard mix whose
    # replay rejected its cancels and reprices as ORDER_NOT_FOUND and ended in another book
    # than its stats, and a touch flow whose stale cancels all named first_id
    extra = {"resting": 5_000} if name == "stale_cancel" else {}
    gen = (lambda **kw: W.generate(name, 6_000, seed=3, **{**extra, **kw})) \
        if name == "stale_cancel" else (lambda **kw: _gen(name, **kw))
    base = gen()
    n_ids = int(np.count_nonzero(np.concatenate([base.setup, base.flow])["kind"]
                                 <= mc.CommandKind.MARKET))
    for first_id in (2**63 - n_ids + 1, 2**63 - 1, 2**63, 2**64 - 1):
        with pytest.raises(ValueError, match=f"first_id={first_id} leaves no room"):
            gen(first_id=first_id)
    # the largest first_id allowed: the same flow with shifted ids, replayed as its stats say
    top = 2**63 - len(base.setup) - len(base.flow)
    w = gen(first_id=top)
    assert int(np.concatenate([w.setup, w.flow])["order_id"].max()) <= 2**63 - 1
    for a, b in ((w.setup, base.setup), (w.flow, base.flow)):
        assert np.array_equal(a["order_id"] - np.uint64(top - 1), b["order_id"])
        assert np.array_equal(a[["kind", "side", "price", "qty"]], b[["kind", "side", "price", "qty"]])
    book = mc.OrderBook()
    book.process(w.setup)
    book.process(w.flow)
    assert book.state_hash() != 0 and len(book) == base.stats["resting_at_end"]
    assert {k: v for k, v in w.stats.items() if k != "state_hash"} == \
        {k: v for k, v in base.stats.items() if k != "state_hash"}
    assert book.state_hash() == w.stats["state_hash"]


def test_workload_without_numba_same_commands_as_compiled():
    pytest.importorskip("numba")
    src = Path(__file__).resolve().parents[1] / "src"
    code = ("import sys; sys.modules['numba'] = None; sys.path.insert(0, %r)\n"
            "from matchcore import workloads as W\n"
            "for name, kw in %r.items():\n"
            "    w = W.generate(name, 3_000, seed=3, **kw)\n"
            "    assert not w.stats['compiled']\n"
            "    sys.stdout.buffer.write(w.setup.tobytes() + w.flow.tobytes())\n"
            "    print(repr(w.stats), flush=True)\n" % (str(src), SMALL))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    expected = b""
    for name, kw in SMALL.items():
        w = W.generate(name, 3_000, seed=3, **kw)
        assert w.stats["compiled"]
        stats = {**w.stats, "compiled": False}
        expected += w.setup.tobytes() + w.flow.tobytes() + (repr(stats) + "\n").encode()
    assert r.stdout == expected


def test_standard_mix_kinds_match_the_standard_proportions():
    setup, flow = W.standard_mix(40_000, seed=5)
    assert len(setup) == 1_000
    frac = np.bincount(flow["kind"], minlength=4) / len(flow)
    ioc = np.count_nonzero((flow["kind"] == 0) & (flow["tif"] == mc.TIF.IOC)) / len(flow)
    gtc = np.count_nonzero((flow["kind"] == 0) & (flow["tif"] == mc.TIF.GTC)) / len(flow)
    assert abs(gtc - 0.09) < 0.01 and abs(ioc - 0.03) < 0.005
    assert abs(frac[mc.CommandKind.CANCEL] - 0.06) < 0.01
    assert abs(frac[mc.CommandKind.MODIFY] - 0.82) < 0.01
    book = harness.build_book(setup, flow)
    book.process(flow)
    assert 500 <= len(book) <= 3_000
    levels = book.level_count(0) + book.level_count(1)
    assert 300 <= levels <= 750



@pytest.mark.parametrize("spread", ["False", 0.5, None])
def test_generate_deep_book_spread_not_a_flag_refused_as_deep_book_refuses_it(spread):
    # deep_book(spread="False") raised TypeError; generate("deep_book", spread="False") took
    # the string as true, generated the spread variant and recorded spread="False"
    with pytest.raises(TypeError, match="spread must be True or False"):
        W.deep_book(10, resting=2000, spread=spread)
    with pytest.raises(TypeError, match="spread must be True or False"):
        W.generate("deep_book", 10, resting=2000, spread=spread)


def test_generate_deep_book_spread_recorded_as_the_flag_used():
    w = W.generate("deep_book", 10, resting=2000, spread=np.bool_(True))
    assert w.params["spread"] is True
    setup, flow = W.deep_book(10, resting=2000, spread=True)
    assert w.setup.tobytes() == setup.tobytes() and w.flow.tobytes() == flow.tobytes()

def test_deep_book_touch_variant_keeps_the_deep_orders_resting():
    setup, flow = W.deep_book(5_000, resting=50_000)
    book = harness.build_book(setup, flow)
    book.process(flow)
    assert len(setup) == 50_000
    assert len(book) >= 49_000


def test_market_maker_mix_most_orders_end_cancelled():
    w = W.generate("market_maker", 30_000, seed=2)
    assert w.stats["cancelled"] / w.stats["orders"] > 0.9


def test_sweep_burst_sweeps_take_many_levels():
    w = _gen("sweep", n=20_000)
    book = harness.build_book(w.setup, w.flow)
    ev = book.process(w.flow)
    fills = ev[ev["kind"] == mc.EventKind.FILL]
    takers = w.flow["order_id"][(w.flow["kind"] == mc.CommandKind.MARKET)
                                | (w.flow["tif"] == mc.TIF.IOC)]
    assert len(takers) > 20
    levels = [len(np.unique(fills["price"][fills["order_id"] == oid])) for oid in takers[:50]]
    assert max(levels) >= 20


def test_workload_save_then_load_same_arrays(tmp_path):
    w = _gen("standard", n=500)
    back = W.Workload.load(w.save(tmp_path / "w.npz"))
    assert back.name == "standard" and back.params == w.params
    assert back.setup.tobytes() == w.setup.tobytes() and back.flow.tobytes() == w.flow.tobytes()



def test_workload_save_interrupted_leaves_the_old_file_whole_and_no_temporary(tmp_path,
                                                                              monkeypatch):
    # save() wrote the archive in place: a run interrupted while writing it (Ctrl-C in
    # `bench --save-workloads`) left a truncated .npz where the old one was, which load()
    # refused, while the .mccmd files beside it are written whole or not at all
    path = tmp_path / "w.npz"
    old = _gen("standard", n=500)
    old.save(path)
    real = np.lib.format.write_array

    def cut(fp, array, *a, **k):
        if array.size and array.dtype == mc.COMMAND_DTYPE and len(array) == 900:
            fp.write(array.tobytes()[:100])
            raise KeyboardInterrupt
        return real(fp, array, *a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", cut)
    with pytest.raises(KeyboardInterrupt):
        _gen("standard", n=900).save(path)
    monkeypatch.undo()
    back = W.Workload.load(path)
    assert back.flow.tobytes() == old.flow.tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
    # and a name without the suffix is still written as NAME.npz
    assert old.save(tmp_path / "v") == tmp_path / "v.npz"
    assert W.Workload.load(tmp_path / "v.npz").flow.tobytes() == old.flow.tobytes()


def test_workload_numpy_parameters_save_then_load_same_params(tmp_path):
    # sizes and probabilities taken from numpy arrays were recorded as np.int64(...) /
    # np.float64(...): the file was written, and load() failed on it ("malformed node")
    w = W.generate("market_maker", np.int64(300), seed=np.int64(4), makers=np.int64(3),
                   take_prob=np.float64(0.05))
    back = W.Workload.load(w.save(tmp_path / "w.npz"))
    assert back.params == w.params == {**back.params, "n": 300, "makers": 3, "take_prob": 0.05}
    assert all(type(v) in (int, float, bool) for v in back.params.values())
    assert back.stats == w.stats
    assert back.flow.tobytes() == w.flow.tobytes()

def test_workload_save_native_then_replay_same_book(tmp_path):
    native = pytest.importorskip("matchcore.native")
    w = _gen("market_maker", n=2_000)
    setup_path, flow_path = w.save_native(tmp_path / "mm")
    assert native.read_commands(flow_path).tobytes() == w.flow.tobytes()
    a = harness.build_book(w.setup, w.flow)
    a.process(w.flow)
    b = mc.OrderBook()
    b.process(native.read_commands(setup_path))
    b.process(native.read_commands(flow_path))
    assert a.state_hash() == b.state_hash()


def test_generate_unknown_workload_or_parameter_raises():
    with pytest.raises(ValueError, match="unknown workload"):
        W.generate("nope", 10)
    with pytest.raises(TypeError, match="no parameter"):
        W.generate("standard", 10, depth=3)
    with pytest.raises(ValueError):
        W.standard_mix(-1)


@pytest.mark.parametrize("name", W.WORKLOADS)
def test_workload_negative_seed_refused_naming_seed(name):
    # numpy's words, "expected non-negative integer", named no parameter
    with pytest.raises(ValueError, match=r"^seed must be >= 0, got -1$"):
        W.generate(name, 300, seed=-1, **SMALL.get(name, {"resting": 2_000}))


@pytest.mark.parametrize("name, params", [
    ("standard", dict(levels=1.5)), ("standard", dict(resting=1.5)),
    ("standard", dict(background=2.0)), ("standard", dict(first_id=1.0)),
    ("market_maker", dict(quotes=2.5)), ("sweep", dict(sweep_levels=4.0, resting=100)),
    ("deep_book", dict(resting=2000.0)), ("wide_book", dict(resting=2000, band=1.5)),
    ("stale_cancel", dict(resting=2000.5)), ("market_heavy", dict(resting=2000, recent="9")),
    ("wide_book", dict(resting=2000, levels=3.0)), ("standard", dict(n=1.5)),
])
def test_workload_non_integer_count_raises_typeerror_naming_it(name, params):
    # a float was taken as far as numpy or Numba: levels=1.5 failed with a Numba typing error
    # pages long, resting=1.5 with numpy's "expected a sequence of integers", band=1.5 made a
    # workload, as the books refuse a float quantity
    params = dict(params)
    n = params.pop("n", 300)
    bad = "n" if not isinstance(n, int) else next(k for k, v in params.items()
                                                   if not isinstance(v, int))
    with pytest.raises(TypeError, match=rf"^{bad} must be an integer, got "):
        W.generate(name, n, seed=1, **params)


def test_import_matchcore_does_not_import_numba():
    src = Path(__file__).resolve().parents[1] / "src"
    code = ("import sys; sys.path.insert(0, %r); import matchcore, matchcore.workloads, "
            "matchcore.bench, matchcore.cli_bench; "
            "assert 'numba' not in sys.modules, 'numba imported'; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'" % str(src))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _bad_rejects(setup, flow) -> int:
    # every reject but the stale cancels a touch flow means to make
    ev = mc.OrderBook(capacity=len(setup) + len(flow)).process(np.concatenate([setup, flow]))
    return int(np.count_nonzero((ev["kind"] == mc.EventKind.REJECTED)
                                & (ev["reason"] != mc.Reason.ORDER_NOT_FOUND)))


@pytest.mark.parametrize("name, params", [
    ("standard", dict(levels=10_000_000)),
    ("standard", dict(levels=1_999_000, background=300_000)),
    ("deep_book", dict(levels=3_000_000, resting=2000)),
    ("sweep", dict(levels=2_000_000, resting=2000)),
    ("sweep", dict(levels=2_000, resting=2000, sweep_levels=400_000)),
    ("market_maker", dict(spread=1_000_000)),
    ("wide_book", dict(resting=2000, levels=1_000_000)),
    ("stale_cancel", dict(resting=2000, band=2_000_000)),
    ("standard", dict(first_id=2**63 - 100)),
    ("market_maker", dict(first_id=2**64 - 10)),
    ("wide_book", dict(resting=2000, first_id=2**63 - 10)),
])
def test_workload_params_giving_invalid_prices_or_ids_raise(name, params):
    # they generated bids at zero or negative prices (INVALID_PRICE rejects throughout the
    # workload), or ids past 2**63 that the generator's book refused while writing them
    with pytest.raises(ValueError, match="positive prices|leaves no room"):
        W.generate(name, 300, seed=1, **params)


@pytest.mark.parametrize("name, params", [
    ("standard", dict(levels=2 * (W.MID - 1), resting=2000)),
    ("sweep", dict(levels=2 * (W.MID - 121), resting=2000, sweep_levels=40, sweep_prob=0.3)),
    ("market_maker", dict(spread=W.MID - 2000)),
    ("wide_book", dict(resting=2000, levels=W.MID - 1)),
    ("standard", dict(first_id=2**63 - 1 - 2300)),
])
def test_workload_params_at_the_edge_accepted_and_valid(name, params):
    w = W.generate(name, 300, seed=1, **params)
    assert _bad_rejects(w.setup, w.flow) == 0
    assert w.setup["price"].min() >= 1 or len(w.setup) == 0


def test_standard_mix_book_settles_at_the_documented_size_not_its_start():
    # The IOCs take the best level at most, so the flow holds the book at about 1,700-2,000
    # orders, not at the 1,000 it starts from (the README said ~1,000 throughout)
    for seed in (1, 2):
        w = W.generate("standard", 200_000, seed=seed)
        assert len(w.setup) == 1_000
        assert 1_500 <= w.stats["resting_at_end"] <= 2_300, (seed, w.stats)


def _sweep_levels(w):
    book = harness.build_book(w.setup, w.flow)
    ev = book.process(w.flow)
    fills = ev[ev["kind"] == mc.EventKind.FILL]
    big = (w.flow["kind"] == mc.CommandKind.MARKET) | (w.flow["tif"] == mc.TIF.IOC)
    order = np.argsort(fills["order_id"], kind="stable")
    by_taker = np.split(fills["price"][order],
                        np.flatnonzero(np.diff(fills["order_id"][order])) + 1)
    levels = dict(zip(np.unique(fills["order_id"]).tolist(),
                      (len(np.unique(p)) for p in by_taker)))
    n = np.array([levels.get(oid, 0) for oid in w.flow["order_id"][big].tolist()])
    kind = w.flow["kind"][big]
    return n[kind == mc.CommandKind.SUBMIT], n[kind == mc.CommandKind.MARKET]


def test_sweep_burst_iocs_and_market_orders_take_the_documented_levels():
    # the README said every sweep ate ~40-80 levels: the IOCs take a median of about 26 (their
    # limit 2k ticks through the touch), the market orders about 145
    ioc, market = _sweep_levels(W.generate("sweep", 200_000, seed=1))
    assert len(ioc) > 300 and len(market) > 300
    assert 18 <= np.median(ioc) <= 36 and 110 <= np.median(market) <= 190
    assert np.percentile(market, 10) > np.percentile(ioc, 90) * 0.8


def test_touch_workload_small_book_grows_from_its_start_size():
    # `depth` names each point by the size the book starts from: over 300k messages the 1k book
    # grows to tens of thousands of orders near the touch (README: 59k / 6k / 31k)
    want = {"wide_book": (45_000, 75_000), "stale_cancel": (3_000, 10_000),
            "market_heavy": (22_000, 40_000)}
    for name, (lo, hi) in want.items():
        w = W.generate(name, 300_000, seed=1, resting=1_000)
        assert lo <= w.stats["resting_at_end"] <= hi, (name, w.stats)
        assert w.stats["levels_at_end"] < 400


@pytest.mark.parametrize("method", ["save", "save_native"])
def test_workload_save_name_ending_in_a_separator_refused_nothing_written(tmp_path, method):
    # "dir/" names a directory: through Path the slash was dropped and "dir.npz" written (by
    # save_native, "dir.setup.mccmd" and "dir.flow.mccmd")
    import errno

    w = W.generate("standard", 100, seed=1)
    with pytest.raises(IsADirectoryError) as exc:
        getattr(w, method)(str(tmp_path / "dir") + "/")
    assert exc.value.errno == errno.EISDIR and exc.value.filename == str(tmp_path / "dir") + "/"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", ["save", "save_native"])
@pytest.mark.parametrize("name", [".", "..", "sub/.."])
def test_workload_save_name_of_no_file_refused_as_a_directory_nothing_written(
        tmp_path, monkeypatch, method, name):
    # "." is the current directory to Path: save failed with pathlib's
    # "PosixPath('.') has an empty name", not the refusal save gives a directory's name;
    # "sub/.." is the directory above sub, and "sub/...npz" was written
    import errno

    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    w = W.generate("standard", 100, seed=1)
    with pytest.raises(IsADirectoryError) as exc:
        getattr(w, method)(name)
    assert exc.value.errno == errno.EISDIR and exc.value.filename == name
    assert list(tmp_path.iterdir()) == [tmp_path / "sub"]
    assert list((tmp_path / "sub").iterdir()) == []


@pytest.mark.parametrize("method, name", [("save", "path"), ("save_native", "prefix")])
def test_workload_save_empty_path_value_error_as_native_writers_nothing_written(
        tmp_path, monkeypatch, method, name):
    # "" raised IsADirectoryError (of ".", a directory nobody named), where the native and
    # LOBSTER readers and writers raise ValueError("path: an empty path")
    monkeypatch.chdir(tmp_path)
    w = W.generate("standard", 100, seed=1)
    with pytest.raises(ValueError) as exc:
        getattr(w, method)("")
    assert str(exc.value) == f"{name}: an empty path"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method, written", [("save", ".npz"), ("save_native", ".setup.mccmd")])
def test_workload_save_in_a_missing_directory_error_names_the_file_asked_for(
        tmp_path, method, written):
    # save_native's error named the temporary file beside the one asked for
    # ("No such file or directory: '.../new/w.setup.mccmd.tmp4242.9f3a01c2'")
    w = W.generate("standard", 100, seed=1)
    with pytest.raises(FileNotFoundError) as exc:
        getattr(w, method)(str(tmp_path / "new" / "w"))
    assert exc.value.filename == str(tmp_path / "new" / "w") + written
    assert list(tmp_path.iterdir()) == []


def test_workload_load_finds_what_save_wrote_under_the_same_name(tmp_path):
    # save("w") writes w.npz (and returns that path), but load("w") looked for "w" and raised
    # FileNotFoundError: the name given to save could not be given to load
    w = _gen("standard", n=900)
    for name in (tmp_path / "w", str(tmp_path / "v"), tmp_path / "u.npz"):
        w.save(name)
        back = W.Workload.load(name)
        assert np.array_equal(back.setup, w.setup) and np.array_equal(back.flow, w.flow)
        assert back.name == w.name and back.params == w.params
    # a file of the very name given is read as it is (a workload renamed without .npz)
    os.replace(tmp_path / "w.npz", tmp_path / "renamed")
    back = W.Workload.load(tmp_path / "renamed")
    assert np.array_equal(back.flow, w.flow)


def test_workload_load_name_ending_in_a_separator_refused(tmp_path):
    # the name save refuses: through Path the slash was dropped and "dir.npz" read
    _gen("standard", n=900).save(tmp_path / "dir")
    with pytest.raises(IsADirectoryError):
        W.Workload.load(str(tmp_path / "dir") + "/")


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case", ["itch", "text", "npy", "empty", "no-meta", "no-flow",
                                  "bad-meta", "meta-not-a-dict", "meta-missing-keys"])
def test_workload_load_of_a_file_that_is_no_workload_refused_naming_it(tmp_path, case):
    # a file save() did not write failed in numpy's words: "contains pickled (object) data. If
    # you trust the file you can load it unsafely using the allow_pickle= keyword" (advice to
    # unpickle an ITCH file), KeyError "meta is not a file in the archive", SyntaxError
    import matchcore.itch as itch

    w = W.generate("standard", 100, seed=1)
    p = tmp_path / "x.npz"
    if case == "itch":
        itch.generate(p, messages=1000, symbols=2, seed=1)
    elif case == "text":
        p.write_text("setup,flow\n1,2\n")
    elif case == "npy":
        with open(p, "wb") as f:
            np.save(f, w.flow)
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "no-meta":
        _npz(p, setup=w.setup, flow=w.flow)
    elif case == "no-flow":
        _npz(p, setup=w.setup, meta=np.array(repr({"name": "x", "params": {}, "stats": {}})))
    elif case == "bad-meta":
        _npz(p, setup=w.setup, flow=w.flow, meta=np.array("not a dict("))
    elif case == "meta-not-a-dict":
        _npz(p, setup=w.setup, flow=w.flow, meta=np.array("[1, 2]"))
    else:
        _npz(p, setup=w.setup, flow=w.flow, meta=np.array(repr({"name": "x"})))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}: not a matchcore workload \("):
        W.Workload.load(p)


def test_workload_load_of_an_archive_holding_python_objects_refused_not_unpickled(tmp_path):
    # numpy refused the object array with advice to load it with allow_pickle
    w = W.generate("standard", 100, seed=1)
    p = _npz(tmp_path / "x.npz", setup=w.setup, flow=np.array([{"a": 1}], dtype=object),
             meta=np.array(repr({"name": "x", "params": {}, "stats": {}})))
    with pytest.raises(ValueError, match=re.escape(
            f"{p}: not a matchcore workload (an array that is not plain data)")):
        W.Workload.load(p)


@pytest.mark.parametrize("which", ["setup", "flow"])
def test_workload_save_native_directory_at_either_file_refused_nothing_written(tmp_path, which):
    # a directory at the flow file's name was found only after the setup file was written:
    # half of the pair left behind, beside an error
    (tmp_path / f"w.{which}.mccmd").mkdir()
    w = W.generate("standard", 100, seed=1)
    with pytest.raises(IsADirectoryError) as exc:
        w.save_native(tmp_path / "w")
    assert exc.value.filename == str(tmp_path / f"w.{which}.mccmd")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"w.{which}.mccmd"]
    assert list((tmp_path / f"w.{which}.mccmd").iterdir()) == []


@pytest.mark.parametrize("name, key, extra", [
    ("market_maker", "take_prob", {}), ("market_maker", "move_prob", {}),
    ("sweep", "sweep_prob", {"resting": 500, "levels": 100})])
def test_workload_probability_of_any_real_type_taken_other_types_refused_naming_it(
        tmp_path, name, key, extra):
    # the integer parameters are taken as any integer and refused naming themselves; the
    # probabilities were neither: a Fraction failed in the Numba kernel ("non-precise type
    # pyobject"), a Decimal and a string in Python's words about an operator, naming nothing
    from fractions import Fraction

    value = W._REGISTRY[name][1][key]
    w = W.generate(name, 300, seed=2, **extra, **{key: Fraction(value).limit_denominator()})
    ref = W.generate(name, 300, seed=2, **extra, **{key: value})
    assert (w.flow == ref.flow).all() and w.stats == ref.stats
    assert type(w.params[key]) is float and w.params == ref.params
    assert W.Workload.load(w.save(tmp_path / "w.npz")).params == ref.params
    for bad in ("0.1", None, True, b"0"):
        with pytest.raises(TypeError, match=f"{key} must be a number, got {type(bad).__name__}"):
            W.generate(name, 300, seed=2, **extra, **{key: bad})
    direct = W.market_maker_mix if name == "market_maker" else W.sweep_burst
    with pytest.raises(TypeError, match=f"{key} must be a number, got str"):
        direct(300, seed=2, **extra, **{key: "0.1"})


def test_max_messages_refuses_what_generate_refuses_naming_the_parameter():
    # a misspelt parameter was ignored, and the default's figure given for it (1e18 short of
    # the truth for background=), and a string was taken as its number, where generate()
    # refuses both
    with pytest.raises(TypeError, match=r"workload 'standard' has no parameter\(s\) "
                                        r"\['backgroud'\]"):
        W.max_messages("standard", backgroud=10**18)
    for name, key in (("deep_book", "resting"), ("market_maker", "makers"),
                      ("standard", "first_id")):
        with pytest.raises(TypeError, match=f"{key} must be an integer, got str '5'"):
            W.max_messages(name, **{key: "5"})
        with pytest.raises(TypeError, match=f"{key} must be an integer, got str '5'"):
            W.generate(name, 10, **{key: "5"})
    assert W.max_messages("standard", background=np.int64(10**18)) == 2**63 - 1 - 1000 - 10**18
    assert W.max_messages("market_maker", quotes=2) == 2**63 - 1 - 10 * 2 * 4


@pytest.mark.parametrize("which, bad, error, message", [
    ("flow", "2d", ValueError, "save_native() flow needs a 1-d array, got shape (4, 25)"),
    ("flow", "float", TypeError, "save_native() flow needs an array of matchcore.COMMAND_DTYPE"),
    ("setup", "float", TypeError, "save_native() setup needs an array of matchcore.COMMAND_DTYPE"),
])
def test_workload_save_native_array_write_commands_refuses_nothing_written(tmp_path, which, bad,
                                                                          error, message):
    # a flow that write_commands refuses was refused after the setup file had been written:
    # half of the pair left behind, beside an error naming neither array
    w = W.generate("standard", 100, seed=1)
    arr = getattr(w, which)
    arr = (arr.reshape(4, -1) if bad == "2d" else
           arr.astype([(n, "<f8") for n in mc.COMMAND_DTYPE.names]))
    w = W.Workload(w.name, arr if which == "setup" else w.setup,
                   arr if which == "flow" else w.flow, w.params, w.stats)
    with pytest.raises(error, match=re.escape(message)):
        w.save_native(tmp_path / "w")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["2d", "big_endian", "float"])
def test_workload_save_array_load_cannot_use_refused_or_written_readable(tmp_path, bad):
    # save() wrote any arrays: a 2-d flow was saved and loaded, refused only by process(), and
    # a flow in the other byte order was saved and then refused by load() as not COMMAND_DTYPE
    w = W.generate("standard", 100, seed=1)
    flow = {"2d": w.flow.reshape(4, 25),
            "big_endian": w.flow.astype(mc.COMMAND_DTYPE.newbyteorder(">")),
            "float": w.flow.astype([(n, "<f8") for n in mc.COMMAND_DTYPE.names])}[bad]
    odd = W.Workload(w.name, w.setup, flow, w.params, w.stats)
    if bad == "big_endian":
        back = W.Workload.load(odd.save(tmp_path / "w.npz"))
        assert back.flow.dtype == mc.COMMAND_DTYPE and np.array_equal(back.flow, w.flow)
        return
    with pytest.raises(ValueError if bad == "2d" else TypeError,
                       match=re.escape("save() flow needs a")):
        odd.save(tmp_path / "w.npz")
    assert list(tmp_path.iterdir()) == []


def test_workload_load_of_arrays_not_1d_refused(tmp_path):
    w = W.generate("standard", 100, seed=1)
    p = _npz(tmp_path / "x.npz", setup=w.setup, flow=w.flow.reshape(4, 25),
             meta=np.array(repr({"name": "x", "params": {}, "stats": {}})))
    with pytest.raises(ValueError, match=re.escape(
            f"{p}: not a matchcore workload (arrays of shapes (1000,) and (4, 25), not 1-d)")):
        W.Workload.load(p)


def test_sweep_burst_cancel_share_is_the_one_its_docstring_states():
    # the docstring said "10% cancels": the cancel probability is 10% times the book's size
    # over `resting`, and the sweeps keep the book at about 12,000-15,000 of its 20,000, so
    # 7-8% of the flow is cancels
    for seed in (1, 2):
        w = W.generate("sweep", 200_000, seed=seed)
        share = float(np.mean(w.flow["kind"] == mc.CommandKind.CANCEL))
        assert 0.065 < share < 0.08
        assert 12_000 <= w.stats["resting_at_end"] <= 16_000
    doc = " ".join(W.sweep_burst.__doc__.split())
    assert "10% cancels" not in doc and "about 7% of the flow is cancels" in doc



def test_workload_save_native_docstring_gives_the_replay_that_rebuilds_the_book(tmp_path):
    # the docstring said "replay with matchcore replay FILE --format native": the flow file
    # replayed so starts from an empty book, not the setup's, and 79% of a standard flow's
    # commands came back REJECTED; the pair applied in order to one book is the workload
    native = pytest.importorskip("matchcore.native")
    w = _gen("standard", n=2_000)
    setup_path, flow_path = w.save_native(tmp_path / "std")
    book = mc.OrderBook()
    book.process(native.read_commands(setup_path))
    ev = book.process(native.read_commands(flow_path))
    assert book.state_hash() == w.stats["state_hash"]
    assert int(np.count_nonzero(ev["kind"] == mc.EventKind.REJECTED)) == 0
    alone = native.replay_commands(flow_path)
    assert np.count_nonzero(alone["kind"] == mc.EventKind.REJECTED) > len(w.flow) // 2
    doc = " ".join(mc.workloads.Workload.save_native.__doc__.split())
    assert "replay with ``matchcore replay FILE" not in doc
    assert "book.process(read_commands(flow_path))" in doc


def test_workloads_compare_by_their_commands_params_and_stats(tmp_path):
    # The generated __eq__ compared the arrays with ==, whose truth value numpy refuses:
    # `generate(...) == generate(...)` raised ValueError ("The truth value of an array with
    # more than one element is ambiguous") for any two workloads that were not one object
    a, b = _gen("standard", n=500), _gen("standard", n=500)
    assert a == b and not a != b
    assert W.Workload.load(a.save(tmp_path / "w.npz")) == a
    assert a != _gen("standard", n=500, seed=4)
    assert a != _gen("standard", n=501)
    flipped = W.Workload(a.name, a.setup, a.flow.copy(), a.params, a.stats)
    flipped.flow["qty"][-1] += 1
    assert a != flipped
    assert a != W.Workload(a.name, a.setup, a.flow, a.params, {**a.stats, "fills": -1})
    assert a != W.Workload("other", a.setup, a.flow, a.params, a.stats)
    assert a != (a.setup, a.flow) and (a == "standard") is False
