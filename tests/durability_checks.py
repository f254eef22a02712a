"""Helpers shared by the durability test files: a journaled engine, the bit-by-bit CRC-32C
reference, the last segment of a journal, a directory's files and sizes, and the recovery
check that also compares the rewritten trade capture."""
from __future__ import annotations

import os
import pickle

import numpy as np

import matchcore as mc
from matchcore.durability import read_trades
from matchcore.durability.journal import segment_files, KIND_COMMANDS


def journaled(tmp_path, name="j", **kw):
    d = tmp_path / name
    kw.setdefault("fsync", "never")
    return mc.Engine(journal=d, **kw), d


def journal_of_segments(tmp_path):
    """A closed journal of 300 filled-or-resting submits in small segments (more than two
    command segments, a trade journal): the directory."""
    eng, d = journaled(tmp_path, segment_bytes=8256)
    eng.add_symbol(1)
    for k in range(300):
        eng.submit(1, 1 + k, mc.Side.BUY if k % 2 else mc.Side.SELL, 100, 5)
    eng.close()
    return d


def _crc32c_py(data: bytes) -> int:
    # bit-by-bit CRC-32C (reflected 0x82F63B78): an independent, obviously correct reference
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _files_and_sizes(d):
    return {n: os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)}


def _last_segment(d, kind=KIND_COMMANDS):
    return segment_files(d, kind)[-1][1]


def _assert_recovers_with_trades(d, state_hash, trades):
    """Recover d: the state hash must be state_hash, and the trade journal afterwards the
    records of ``trades`` (fields the capture writes). Returns the recovery report."""
    rec = mc.Engine.recover(d)
    report = rec.recovery_report
    assert rec.state_hash() == state_hash
    rec.check_invariants()
    rec.close()
    again = read_trades(d)
    for f in ("seq", "cmd_seq", "taker_id", "maker_id", "price", "qty", "last"):
        assert np.array_equal(again[f], trades[f]), f
    return report


def journal_last_command_lost(d):
    """A journal at ``d`` of three commands whose last (it trades) is cut from the command
    journal: its fill stays in the trade journal, of a command the journal no longer holds."""
    from matchcore.durability import read_journal

    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    eng.submit(1, 3, mc.Side.SELL, 100, 2)
    eng.close()
    rec = read_journal(d)
    os.truncate(segment_files(d, KIND_COMMANDS)[-1][1], int(rec["index"]["offset"][-1]))
    return d


def cut_trade_fill_after_scan(monkeypatch, module, d):
    """Make ``module.scan_journal`` (the name a reader calls) cut the last fill (104 bytes) off
    ``d``'s last trade segment right after the first scan of the trade journal: a writing
    recovery's cut landing between a reader's scan and its next read. Returns the list that
    holds the segment once cut."""
    from matchcore.durability.journal import KIND_TRADES

    seg = segment_files(d, KIND_TRADES)[-1][1]
    real_scan = module.scan_journal
    cut = []

    def cut_after_scan(path, kind=KIND_COMMANDS, **kw):
        scan = real_scan(path, kind, **kw)
        if kind == KIND_TRADES and not cut:
            os.truncate(seg, os.path.getsize(seg) - 104)
            cut.append(seg)
        return scan

    monkeypatch.setattr(module, "scan_journal", cut_after_scan)
    return cut


def as_nobody(body, *, nproc=None):
    """body() run in a forked child as user nobody (with RLIMIT_NPROC ``nproc``, if given);
    what it returns, pickled through a pipe. Needs root."""
    import resource

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            if nproc is not None:
                # (root is not held to RLIMIT_NPROC: the limit counts this user's tasks)
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            os.write(w, pickle.dumps(body()))
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    got = b""
    while chunk := os.read(r, 65536):
        got += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pickle.loads(got)
