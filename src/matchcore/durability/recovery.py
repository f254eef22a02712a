"""Recovery: newest valid snapshot + the command journal's tail = the engine as it was.

1. Scan the command journal. Corruption (a bad record followed by valid data, a sequence gap, a
   bad header on a segment that is not a torn last one) raises :class:`JournalError` naming the
   segment and offset; a torn tail is noted.
2. Take the newest snapshot that loads (CRC, layout, state hash) and that the journal continues
   (its seq is journaled, the journal holds every record after it, and a segment starting right
   after it that records the state it continues records this snapshot's); report the others.
   A journal whose first segment records a start state that no snapshot (nor the empty engine)
   holds raises :class:`JournalError`.
3. Scan the trade journal; keep its records up to the last *complete* command (``last`` flag)
   that the command journal holds.
4. Cut the torn tails (truncate, so appends continue cleanly) and drop trailing segment files
   that hold nothing valid.
5. Replay the command journal after the snapshot: config records through the Engine's methods,
   order commands in compiled code, each outcome checked against the recorded one (a mismatch
   raises :class:`JournalError`); fills of commands the trade journal lacks are written to it.
6. Attach the writers: the engine keeps journaling into the same directory, under the fsync
   policy and with the trade capture its newest command segment records unless others are
   given (options the last segment's header records otherwise start a new segment).
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from matchcore._cliutil import plural
from matchcore._core import COMMAND_DTYPE, CommandKind, Reason, _flag_arg
from matchcore.durability import _journal as _j
from matchcore.durability.errors import JournalError, SnapshotFileError
from matchcore.durability.journal import (
    _RELISTS, _gone, KIND_COMMANDS, KIND_TRADES, ReadBuffer, SegmentChanged,
    check_journal_option_names, check_journal_options, creation_leftovers, lock_directory,
    lock_held, lock_refusal, open_writers, refuse_bytes_dir, require_directory, scan_journal,
    segment_files, segment_temporaries, unlink_quietly, writer_takes,
)
from matchcore.durability.snapshot import (
    _load_snapshot, engine_state_hash, fsync_dir, list_snapshots, read_snapshot_header,
    remove_stale_temporaries,
)

if TYPE_CHECKING:
    from matchcore._engine import Engine


def _segment_temps(files) -> list[str]:
    # the names of segment writers' temporaries (segment_temporaries) among files
    return [os.path.basename(f) for f in files if f.endswith(".new")]


def _snapshot_temps(files) -> list[str]:
    return [os.path.basename(f) for f in files if not f.endswith(".new")]


@dataclass
class RecoveryReport:
    """What :func:`recover` found and did."""
    path: str
    snapshot: str | None = None          # snapshot file used
    snapshot_seq: int = 0                # journal position it holds
    skipped_snapshots: list = field(default_factory=list)   # [(file, reason)]
    replayed_commands: int = 0
    replayed_configs: int = 0
    last_seq: int = 0                    # last journaled command now in the engine
    torn_tail: tuple | None = None       # command journal: (segment, offset, reason)
    trades_torn_tail: tuple | None = None
    # read-only: a writer alive now holds the directory's LOCK (journal.lock_held; None: cannot
    # be told), as journal inspect says it: the end of each journal is then its record in
    # flight (command journal, trade journal: (segment, offset, reason so far)), not a torn
    # tail, and nothing is listed as one a recovery would cut, drop, remove or set aside
    live_writer: bool | None = False
    in_flight: tuple | None = None
    trades_in_flight: tuple | None = None
    # bytes cut off the ends of segments (both journals): torn tails, and fills of commands
    # the command journal does not hold (or not complete)
    cut_bytes: int = 0
    # journal segments with nothing valid, and trade segments wholly after the trade journal's
    # cut (fills of commands the command journal does not hold, or not complete)
    dropped_files: list = field(default_factory=list)
    # snapshot temporaries (snapshot-<seq>.mcs.tmp<pid>.<hex>) and segment temporaries
    # (<segment>.new) whose writer died before its rename
    removed_temporaries: list = field(default_factory=list)
    set_aside: list = field(default_factory=list)   # [(snapshot, new name)]: not of this journal
    # read-only: what a recovery that may write files would cut (bytes), drop (segment files)
    # and set aside ([(snapshot, new name)]), which it then reports as cut_bytes,
    # dropped_files and set_aside
    bytes_to_cut: int = 0
    files_to_drop: list = field(default_factory=list)
    snapshots_to_set_aside: list = field(default_factory=list)
    temporaries_to_remove: list = field(default_factory=list)   # read-only: removed_temporaries
    # read-only: why a recovery that may write files refuses the directory (its LOCK is not a
    # regular file), the message of the JournalError it raises before changing anything
    lock_refused: str | None = None
    # files made to journal on (LOCK, a first command segment where none is left, a trade
    # segment where none is kept, a segment started for options_changed); read-only:
    # files_to_create, those a writing one makes
    created_files: list = field(default_factory=list)
    files_to_create: list = field(default_factory=list)
    # an empty last segment whose header records other options than given, replaced by one
    # recording them (it exists: not among created_files); read-only: files_to_replace
    replaced_files: list = field(default_factory=list)
    files_to_replace: list = field(default_factory=list)
    # [(segment, option, recorded, given)]: options given that the header of the last segment
    # records otherwise, for which the writer starts a new segment (among created_files or
    # replaced_files, or read-only files_to_create or files_to_replace) instead of appending
    # to that one
    options_changed: list = field(default_factory=list)
    # {option: segment}: segment_bytes, when the caller gave none, is the journal's own, as
    # that segment's header records it; an entry of options_changed for it (a trade segment
    # recording another size) was not given, and the summary says where it comes from
    options_kept: dict = field(default_factory=dict)
    # False: recovered without trade capture (trades=False, or trades=None of a journal
    # whose newest command segment records it made without)
    trade_capture: bool = True
    # trades=False: the trade journal was scanned, found corrupt and left as it is
    # (segment, offset, reason)
    trades_corrupt: tuple | None = None
    # last command whose fills the trade journal held; None: the trade journal was not read
    # (trades=False with no trade journal or a corrupt one)
    trades_kept_through: int | None = 0
    trades_cut: int = 0                  # fill records cut from the trade journal after it
    trades_to_cut: int = 0               # read-only: those a writing recovery would cut
    trades_rewritten: int = 0            # fill records written during replay
    # read-only: the fill records of commands after the snapshot that the trade journal lacks,
    # which a recovery that may write files writes again (its trades_rewritten)
    trades_to_rewrite: int = 0
    trades_missing: int = 0              # fills before the snapshot that no journal holds
    # trades_missing is a lower bound: the commands the journal holds before the snapshot that
    # filled, each counted once (a command may fill in several records, and the snapshot,
    # taken without trade capture, holds no trade seq to count them by)
    trades_missing_at_least: bool = False
    # (first, last) commands before the snapshot whose fills nothing can check: the snapshot
    # was taken without trade capture and the command journal no longer holds them
    trades_unverified: tuple | None = None
    # fill records of commands the journal replays (after the snapshot it starts from) that the
    # trade journal lacks before its first segment (its first segments deleted or lost): their
    # seqs come before the fills it keeps, so they are not written again
    trades_lost_at_start: int = 0
    # read-only: the missing fills are not lost, a recovery that may write files replays the
    # whole journal and writes them again
    trades_rewritable: bool = False
    last_trade_seq: int | None = 0       # None: the trade journal was not read
    state_hash: int = 0
    synced_files: int = 0                # journal segments fdatasync'ed before journaling on
    modified: bool = False               # files were cut, dropped, removed or renamed
    readonly: bool = False               # nothing was cut, dropped or rewritten

    def summary(self) -> str:
        lines = [f"recovered {self.path}: last seq {self.last_seq}, state hash "
                 f"{self.state_hash:#018x}"]
        if self.lock_refused:
            lines.append(f"  REFUSED: {self.lock_refused}")
            lines.append("  (read-only: Engine.recover, matchcore recover --repair raise this "
                         "error and change nothing; what they would do once it is a regular "
                         "file or gone follows)")
        if self.snapshot:
            lines.append(f"  snapshot {os.path.basename(self.snapshot)} (seq {self.snapshot_seq})")
        else:
            lines.append("  no snapshot: whole journal replayed")
        for f, why in self.skipped_snapshots:
            lines.append(f"  skipped snapshot {os.path.basename(f)}: {why}")
        c, k = self.replayed_commands, self.replayed_configs
        lines.append(f"  replayed {c} command{'' if c == 1 else 's'}, {k} config "
                     f"record{'' if k == 1 else 's'}")
        if self.live_writer:
            lines.append("  held by a live writer (its LOCK is held): the end of each journal "
                         "is in flight; Engine.recover and matchcore recover --repair refuse "
                         "the directory until it closes")
        for label, t in (("journal", self.in_flight), ("trades", self.trades_in_flight)):
            if t:
                lines.append(f"  {label}: in flight: {os.path.basename(t[0])} at offset {t[1]} "
                             f"({t[2]} so far): the live writer is still writing there")
        for label, tail in (("journal", self.torn_tail), ("trades", self.trades_torn_tail)):
            if tail:
                # a segment whose header is torn is dropped (listed below), not cut
                done = ("left in place (read-only)" if self.readonly else
                        "dropped" if tail[0] in self.dropped_files else "cut")
                lines.append(f"  {label}: torn tail in {os.path.basename(tail[0])} at offset "
                             f"{tail[1]} ({tail[2]}): {done}")
        what = "off the ends of journal segments (torn tails, fills of commands not kept)"
        if self.cut_bytes:
            lines.append(f"  cut {self.cut_bytes} byte(s) {what}")
        if self.bytes_to_cut:
            lines.append(f"  would cut {self.bytes_to_cut} byte(s) {what}; read-only: "
                         f"Engine.recover, matchcore recover --repair cut them")
        # (nothing valid, or, in the trade journal, only fills of commands cut away)
        if self.dropped_files:
            lines.append(f"  dropped {len(self.dropped_files)} trailing file(s) with nothing "
                         f"to keep: {', '.join(os.path.basename(f) for f in self.dropped_files)}")
        if self.files_to_drop:
            lines.append(f"  would drop {len(self.files_to_drop)} trailing file(s) with nothing "
                         f"to keep (read-only: Engine.recover, matchcore recover --repair "
                         f"drop them): "
                         f"{', '.join(os.path.basename(f) for f in self.files_to_drop)}")
        for f, new in self.set_aside:
            lines.append(f"  renamed {os.path.basename(f)} to {os.path.basename(new)}: not a "
                         f"state of this journal (see above), kept for inspection")
        for f, new in self.snapshots_to_set_aside:
            lines.append(f"  would rename {os.path.basename(f)} to {os.path.basename(new)} "
                         f"(read-only: Engine.recover, matchcore recover --repair rename it): "
                         f"not a state of this journal (see above)")
        # (a command segment started for other options continues the journal)
        started = not self.options_changed and any(
            os.path.basename(f).startswith(_j.SEGMENT_PREFIX[KIND_COMMANDS] + "-")
            for f in self.created_files + self.files_to_create)
        names = ", ".join(os.path.basename(f) for f in self.created_files + self.files_to_create)
        if self.created_files:
            lines.append(f"  started the journal: created {names}" if started else
                         f"  created {names}")
        elif self.files_to_create:
            lines.append(f"  no journal segment: would start the journal here (read-only: "
                         f"Engine.recover, matchcore recover --repair create {names})"
                         if started else
                         f"  would create {names} (read-only: Engine.recover, matchcore "
                         f"recover --repair create them)")
        if self.replaced_files:
            lines.append(f"  replaced {', '.join(map(os.path.basename, self.replaced_files))}")
        if self.files_to_replace:
            lines.append(f"  would replace "
                         f"{', '.join(map(os.path.basename, self.files_to_replace))} "
                         f"(read-only: Engine.recover, matchcore recover --repair replace them)")
        for seg, name, had, want in self.options_changed:
            source = self.options_kept.get(name)
            told = (f"{want} given" if source is None else
                    f"{want}, the journal's own ({os.path.basename(source)} records it)")
            lines.append(f"  {name} {told}, {os.path.basename(seg)} records {had}: "
                         f"{'would start' if self.readonly else 'started'} a new segment "
                         f"recording it")
        for what, files in (("snapshot", _snapshot_temps(self.removed_temporaries)),
                            ("segment", _segment_temps(self.removed_temporaries))):
            if files:
                lines.append(f"  removed {len(files)} stale {what} temporary file(s) (a {what} "
                             f"interrupted before its rename): {', '.join(files)}")
        for what, files in (("snapshot", _snapshot_temps(self.temporaries_to_remove)),
                            ("segment", _segment_temps(self.temporaries_to_remove))):
            if files:
                lines.append(f"  would remove {len(files)} stale {what} temporary file(s) "
                             f"(read-only: Engine.recover, matchcore recover --repair remove "
                             f"them): {', '.join(files)}")
        done = (f"{plural(self.trades_to_rewrite, 'fill')} to rewrite (read-only: "
                f"Engine.recover, matchcore recover --repair write them)"
                if self.trades_to_rewrite else
                "no fills to rewrite" if self.readonly else
                f"rewrote {plural(self.trades_rewritten, 'fill')}")
        cut = (f", cut {self.trades_cut} fill record(s) of commands after it"
               if self.trades_cut else
               f", {self.trades_to_cut} fill record(s) of commands after it to cut (read-only: "
               f"Engine.recover, matchcore recover --repair cut them)"
               if self.trades_to_cut else "")
        if self.trades_corrupt is not None:
            seg, off, why = self.trades_corrupt
            lines.append(f"  trades: capture off (trades=False); trade journal scanned and left "
                         f"as it is: corrupt in {os.path.basename(seg)} at offset {off} "
                         f"({why}); a recovery with trade capture refuses it until it is "
                         f"repaired")
        elif self.trades_kept_through is None:
            lines.append("  trades: trade journal not read (trades=False)")
        elif not self.trade_capture:
            lines.append(f"  trades: capture off (trades=False); trade journal kept through "
                         f"command {self.trades_kept_through}, last trade seq "
                         f"{self.last_trade_seq}{cut}")
        else:
            lines.append(f"  trades: kept through command {self.trades_kept_through}, {done}, "
                         f"last trade seq {self.last_trade_seq}{cut}")
        if self.synced_files:
            lines.append(f"  synced {self.synced_files} journal file(s) to stable storage "
                         f"before journaling on")
        if self.trades_missing and self.trades_rewritable:
            lines.append(f"  WARNING: {self.trades_missing} fill record(s) before the snapshot "
                         f"are missing from the trade journal; a recovery that may write files "
                         f"(Engine.recover, matchcore recover --repair) replays the whole "
                         f"journal to write them again")
        elif self.trades_missing:
            lines.append(f"  WARNING: {'at least ' if self.trades_missing_at_least else ''}"
                         f"{self.trades_missing} fill record(s) before the snapshot "
                         f"are lost from the trade journal (the snapshot holds their effect)")
        if self.trades_lost_at_start:
            lines.append(f"  WARNING: {self.trades_lost_at_start} fill record(s) of commands the "
                         f"journal replays are missing before the trade journal's first "
                         f"segment (deleted or lost): their seqs come before the fills it "
                         f"keeps, so they are not written again")
        if self.trades_unverified:
            a, b = self.trades_unverified
            lines.append(f"  WARNING: fills of commands {a}..{b} cannot be checked: the "
                         f"snapshot was taken without trade capture and the command journal "
                         f"no longer holds them")
        return "\n".join(lines)


def _record_crc(cscan, seq):
    """CRC field of the command journal's record ``seq``; None if the journal lacks it."""
    seg = cscan.load_seq(seq)
    if seg is None:
        return None
    off = int(seg.index["offset"][seq - seg.first_seq])
    return int.from_bytes(seg.data[off + 4:off + 8], "little")


def _base_of(cscan, seq):
    """(segment path, state hash) that the journal's segment starting at ``seq + 1`` records
    for the engine before it (the state the journal was started from), or None: no such
    segment, or one that does not record it (later segments, files of earlier versions)."""
    for seg in cscan.segments:
        if seg.first_seq == seq + 1 and seg.base_hash is not None:
            return seg.path, seg.base_hash
    return None


def _not_of_journal(cscan, head):
    """Why a snapshot can never be a state of this (non-empty) journal, or None."""
    if head["seq"] > cscan.last_seq:
        return f"ahead of the journal (seq {head['seq']} > last journaled {cscan.last_seq})"
    crc = _record_crc(cscan, head["seq"]) if head["anchor"] is not None else None
    if crc is not None and crc != head["anchor"]:
        return (f"taken from another journal: its record at seq {head['seq']} differs from "
                f"this journal's")
    base = _base_of(cscan, head["seq"])
    if base is not None and base[1] != head["state_hash"]:
        # a snapshot-0 has no record to be anchored to: copied from another engine's
        # directory, it was taken for the state the journal started from
        return (f"not the state this journal starts from: {os.path.basename(base[0])} "
                f"records state hash {base[1]:#018x} for the engine before seq "
                f"{head['seq'] + 1}, the snapshot holds {head['state_hash']:#018x} "
                f"(copied from another engine's directory?)")
    return None


def journal_refuses(cscan, head):
    """Why the scanned (non-empty) journal cannot go on from the snapshot of header ``head``:
    (reason, whether it can never be a state of this journal, which recovery sets aside), or
    None. Recovery's rule, which ``journal inspect`` reports."""
    why = _not_of_journal(cscan, head)
    if why:
        return why, True
    first = cscan.segments[0].first_seq
    if first > head["seq"] + 1:
        return (f"journal starts at seq {first}: records after the snapshot's seq "
                f"{head['seq']} are missing"), False
    if head["stp"] != cscan.stp:
        return f"STP mode {head['stp']} differs from the journal's {cscan.stp}", False
    return None


def _check_start(cscan, eng, start, path, report):
    """Refuse to replay the journal from ``eng`` (the state at seq ``start``) when its segment
    starting at ``start + 1`` records another state: a journal started from a seed snapshot
    whose snapshot-0 is gone (or was set aside) replayed from an empty engine gave a state the
    engine never had, without a word."""
    base = _base_of(cscan, start)
    if base is None:
        return
    have = engine_state_hash(eng)
    if have != base[1]:
        seg_path, want = base
        skipped = ("; snapshots skipped: " + "; ".join(f"{os.path.basename(f)}: {why}"
                                                         for f, why in report.skipped_snapshots)
                   if report.skipped_snapshots else "")
        raise JournalError(f"{path}: {os.path.basename(seg_path)} continues an engine of state "
                           f"hash {want:#018x} (the snapshot its journal was started from), "
                           f"but no valid snapshot at seq {start} holds that state (replaying "
                           f"from {'an empty engine' if start == 0 else 'the one found'}, "
                           f"state hash {have:#018x}, would give a state the engine never "
                           f"had){skipped}", seg_path, 0)


def _foreign_snapshots(path, cscan, report, foreign, listed=None):
    """A full replay loads no snapshot, but one that a later recovery would take for a state of
    this journal must still be found and set aside: header checks only. ``listed``: the
    snapshots to judge, as :func:`_pick_snapshot` takes them."""
    if not cscan.segments:
        return
    for seq, fpath in list_snapshots(path) if listed is None else listed:
        try:
            head = read_snapshot_header(fpath)
        except SnapshotFileError:
            continue
        why = _not_of_journal(cscan, head)
        if why:
            report.skipped_snapshots.append((fpath, why))
            foreign.append(fpath)


def load_listed_snapshot(fpath, seq, cls=None):
    """(engine of class ``cls``, default :class:`~matchcore.Engine`; header) of the snapshot
    file ``fpath`` that its name lists at ``seq``, loaded and checked as recovery checks it
    (CRC, layout, books, state hash, the seq its name says); raises
    :class:`SnapshotFileError` with the reason recovery gives for skipping it. What
    ``journal inspect`` calls valid is exactly what this accepts. O(snapshot)."""
    if cls is None:
        from matchcore._engine import Engine as cls
    eng, head = _load_snapshot(fpath, cls=cls)
    if head["seq"] != seq:
        raise SnapshotFileError(f"file name says seq {seq}, content {head['seq']}", fpath)
    return eng, head


def _reason(fpath, why) -> str:
    """A skipped snapshot's reason without the path the snapshot reader's messages start
    with (the caller names the file)."""
    return why[len(fpath) + 2:] if why.startswith(f"{fpath}: ") else why


def _pick_snapshot(path, cscan, report, foreign, cls, seed_only=False, seed_seq=0,
                   listed=None):
    """The newest usable snapshot, loaded as an engine of class ``cls``; appends to
    ``foreign`` the ones that can never be states of this journal (ahead of it, or taken after
    another record at their seq). ``seed_only``: only a snapshot at seq ``seed_seq``, the state
    a journal started from a snapshot (``recover()`` of a directory holding only that
    snapshot) begins with, which no record of the journal holds. ``listed``: the directory's
    snapshots as listed before the journal was scanned (read-only; None: listed now); one of
    them gone when loaded raises :class:`SegmentChanged` (read again)."""
    has_journal = bool(cscan.segments)
    judged = {f for f, _ in report.skipped_snapshots}
    for seq, fpath in reversed(list_snapshots(path) if listed is None else listed):
        if (seed_only and seq != seed_seq) or fpath in judged:    # (reported once)
            continue
        try:
            eng, head = load_listed_snapshot(fpath, seq, cls)
        except SnapshotFileError as exc:
            if listed is not None and _gone(fpath):
                # set aside or removed by a writing recovery since it was listed: not a
                # snapshot that cannot be read
                raise SegmentChanged(f"{fpath} was renamed or removed after it was listed",
                                     fpath, 0) from None
            report.skipped_snapshots.append((fpath, str(exc)))
            continue
        if has_journal:
            refused = journal_refuses(cscan, head)
            if refused:
                report.skipped_snapshots.append((fpath, refused[0]))
                if refused[1]:
                    foreign.append(fpath)
                continue
        return eng, head, fpath
    return None, None, None


def _fills_lacking(cscan, head, kept_cmd, kept_trade):
    """What the trade journal (complete through command ``kept_cmd``, trade ``kept_trade``)
    lacks of the fills up to the snapshot ``head``: (fill records known missing, at least;
    (first, last) command seqs whose fills nothing can check, or None)."""
    if kept_cmd >= head["seq"]:
        return 0, None
    # the snapshot's trade seq counts fills only if trade capture was on when it was taken
    missing = max(0, head["trade_seq"] - kept_trade) if head["trades"] is not False else 0
    first = cscan.segments[0].first_seq if cscan.segments else head["seq"] + 1
    missing = max(missing, len(filled_commands(cscan, kept_cmd, head["seq"])))
    unverified = None
    if head["trades"] is False and first > kept_cmd + 1:
        unverified = (kept_cmd + 1, min(first - 1, head["seq"]))
    return missing, unverified


def filled_commands(cscan, after: int, through: int) -> np.ndarray:
    """The seqs (uint64, ascending) of the commands in ``(after, through]`` of the scanned
    command journal ``cscan`` that made at least one fill, as their recorded outcomes say: a
    submit, market or modify returns the qty it executed, but a cancel returns the qty it
    removed, which made no fill (counted, it reported fills lost, or replayed the whole
    journal, after any quiet spell of cancels before a snapshot). Over every segment.
    O(command journal bytes in that range)."""
    parts = []
    for seg in cscan.segments:
        if not seg.records or seg.last_seq <= after or seg.first_seq > through:
            continue
        seg = seg.load()
        idx = seg.index
        sel = np.flatnonzero((idx["seq"] > after) & (idx["seq"] <= through)
                             & (idx["type"] == _j.REC_COMMAND))
        if len(sel):
            cmds, seqs, results = _j.extract_commands(seg.data, np.ascontiguousarray(
                idx["offset"][sel]))
            parts.append(seqs[(results > 0) & (cmds["kind"] != CommandKind.CANCEL)])
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def trades_lacking(cscan, tscan, head, cut):
    """What the trade journal (scanned: ``tscan``; kept as :func:`_trade_cut` says: ``cut``)
    lacks of the fills before the snapshot of header ``head`` (None: no snapshot, nothing),
    and whether recovery then looks at the seed ``snapshot-0`` to replay the whole journal and
    write them again: it can where the command journal (scanned: ``cscan``) starts at seq 1
    and the trades kept are a prefix. (fill records known missing, (first, last) command seqs
    whose fills nothing can check or None, whether it looks at the seed). Recovery's rule,
    which ``journal inspect`` reports through :func:`looks_at_seed`.
    O(command journal bytes between the two)."""
    if head is None:
        return 0, None, False
    missing, unverified = _fills_lacking(cscan, head, cut[2] if cut else 0,
                                         cut[3] if cut else 0)
    prefix_kept = not tscan.segments or tscan.segments[0].first_seq == 1
    from_seed = bool((missing or unverified) and prefix_kept and cscan.segments
                     and cscan.segments[0].first_seq == 1)
    return missing, unverified, from_seed


def looks_at_seed(cscan, tscan, head) -> bool:
    """Whether recovery (without options) starting from the snapshot of header ``head`` also
    looks at the seed ``snapshot-0`` (:func:`trades_lacking`, of the scanned command and trade
    journals ``cscan`` and ``tscan``, where recovery captures trades and the trade journal is
    not corrupt): what ``journal inspect`` reports (it sets aside such a snapshot-0 that is
    not the state the journal starts from). O(trade journal + command journal bytes)."""
    if not _capture_of(cscan, head) or tscan.corrupt is not None:
        return False
    cut = _trade_cut(tscan, max(cscan.last_seq, head["seq"]))
    return trades_lacking(cscan, tscan, head, cut)[2]


def _trade_cut(tscan, last_cmd_seq):
    """(segment index, offset, cmd seq, trade seq) just past the last complete command's last
    fill that the command journal holds; None if no trade record qualifies."""
    for i in range(len(tscan.segments) - 1, -1, -1):
        seg = tscan.segments[i]
        if seg.records == 0:
            continue
        seg = seg.load()
        recs = _j.trade_records(seg.data, _j.SEG_HEADER, seg.end)
        ok = np.flatnonzero((recs["last"] == 1) & (recs["cmd_seq"] <= last_cmd_seq))
        if len(ok):
            k = int(ok[-1])
            return i, int(seg.index["offset"][k]) + _j.TRADE_RECORD_DTYPE.itemsize, \
                int(recs["cmd_seq"][k]), int(recs["seq"][k])
    return None


def _segment_path(path, kind, first_seq):
    """The file a journal writer starts a segment of ``kind`` in, at ``first_seq``."""
    return os.path.join(path, f"{_j.SEGMENT_PREFIX[kind]}-{first_seq:020d}"
                              f"{_j.SEGMENT_SUFFIX[kind]}")


def _trade_journal_cuts(tscan, cut):
    """What recovery cuts of the scanned trade journal kept as :func:`_trade_cut` says
    (``cut``): ([(segment, size to cut it to)], [files dropped], fill records cut)."""
    cuts, drops, n = [], [], 0
    keep = cut[0] if cut else (0 if tscan.segments else -1)
    for k, seg in enumerate(tscan.segments):
        if k == keep + 1 and cut and seg.records == 0 and seg.first_seq == cut[3] + 1:
            # an empty segment that starts right after the last fill kept (one a recovery
            # started for other options) is where the trade journal goes on, not a segment
            # of fills cut: dropped, it was made again by every recovery after a clean close
            # (a torn first record in it is cut, as in any kept segment)
            keep = k
            if seg.size > _j.SEG_HEADER:
                cuts.append((seg, _j.SEG_HEADER))
            continue
        if k > keep:
            drops.append(seg.path)
            n += seg.records
        elif k == keep:
            size = cut[1] if cut else _j.SEG_HEADER
            if size < seg.size:
                cuts.append((seg, size))
                n += seg.records - (size - _j.SEG_HEADER) // _j.TRADE_RECORD_DTYPE.itemsize
    return cuts, drops, n


def trade_cut_of(path, cscan, tscan):
    """(last command kept, fill records cut, segment files dropped as wholly after the cut) of
    the trade journal by recovery, from the scanned journals of ``path`` (the last command
    kept None, as recovery reports it, where there is no trade journal and recovery without
    ``trades=`` captures none); None where either
    journal is corrupt or there is neither a command segment nor a valid snapshot (recovery
    refuses such a directory before cutting). What ``journal inspect`` reports.
    O(trade journal bytes)."""
    end = _journal_end(path, cscan)
    if end is None or tscan.corrupt is not None:
        return None
    if not segment_files(path, KIND_TRADES) and not recovers_with_capture(path, cscan):
        # recovery without trade capture and no trade journal reads none: it reports no
        # command kept through (None), not 0
        return None, 0, []
    cut = _trade_cut(tscan, end)
    _, drops, n = _trade_journal_cuts(tscan, cut)
    return (cut[2] if cut else 0), n, drops


def _options_differ(seg, fsync, segment_bytes, trades, changed) -> bool:
    """Whether the header of ``seg`` records an option (fsync policy, segment_bytes, trade
    capture; None: not compared) other than the given one; each difference appended to
    ``changed`` as (segment, option, recorded, given)."""
    found = [(seg.path, name, had, want) for name, had, want in (
        ("fsync", seg.fsync, fsync), ("segment_bytes", seg.segment_bytes, segment_bytes),
        ("trades", seg.trades, trades)) if want is not None and had is not None and had != want]
    changed += found
    return bool(found)


def _sync_files(paths, directory) -> int:
    """fdatasync each file and then the directory; returns how many files."""
    for f in paths:
        fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        except OSError as exc:
            # os.fdatasync names no file: "Input/output error" alone, of one of many segments
            raise OSError(exc.errno, f"{exc.strerror}: recovery could not sync the journal "
                                     f"segment to stable storage", f) from exc
        finally:
            os.close(fd)
    fsync_dir(directory)
    return len(paths)


def _close_quietly(*writers):
    """Close the writers of a recovery that failed (the trade journal keeps the fills it
    rewrote: they are valid, and the next recovery goes on from them); the recovery's own
    error is the one raised, not a failure to close."""
    for w in writers:
        if w is not None:
            try:
                w.close()
            except Exception:
                pass


def _remove_made(path, made) -> None:
    """Remove the files of ``made`` (segments a failed writer start may have made: none
    existed before) that exist, and make their removal durable. Errors are ignored: the
    failure being raised is the one that matters."""
    if unlink_quietly(made):
        try:
            fsync_dir(path)
        except OSError:
            pass


def _truncate(fpath, size):
    try:
        # (the open too: a segment this user may not write was refused in open()'s bare
        # "Permission denied: SEGMENT", which did not say that recovery was cutting it)
        with open(fpath, "r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        # (named: truncate and fsync of a descriptor name no file)
        raise OSError(exc.errno, f"{exc.strerror}: recovery could not cut the segment to "
                                 f"{size} bytes", str(fpath)) from exc


def recover(path, *, fsync: str | None = None, snapshot: bool = True, readonly: bool = False,
            trades: bool | None = None, record_events: bool = True,
            **journal_options) -> Engine:
    """Rebuild the engine journaled in directory ``path`` (see the module docstring); returns it,
    journaling on into ``path`` with policy ``fsync`` (``journal_options`` as for
    ``Engine(journal=...)``); ``fsync=None``: the journal's own, as its newest command segment
    records it (``"batch"`` for segments of versions that recorded none); ``trades=None``
    likewise: trade capture as the journal's newest command segment records it (on for
    segments of versions that recorded none; without a segment, as the snapshot used records
    it). ``snapshot=False`` replays
    the whole journal; ``readonly=True`` changes no file and attaches no journal (inspection,
    tests; ``fsync`` and the writer options are then refused with ``ValueError``, ``trades``
    selects whether the trade journal is read): the engine's ``journal_seq`` and ``durable_seq`` are then 0, as without a journal,
    and the position recovered is the report's ``last_seq``. ``record_events`` is as for
    ``Engine(record_events=...)``: it is not journaled, so a recovered engine has the value
    given here (default True), not the one of the engine that wrote the journal. The
    :class:`RecoveryReport` is ``engine.recovery_report``. Raises :class:`JournalError` for
    corruption, a missing journal start, or a replay that diverges from
    the recorded outcomes; ``MemoryError`` when memory runs out (the journal is not at fault:
    recover again). O(journal bytes) to scan and check every record, O(journal tail + snapshot) to
    rebuild; the segments are read one at a time, so memory is one segment's plus the engine's.

    >>> import tempfile, matchcore as mc
    >>> d = tempfile.mkdtemp(); eng = mc.Engine(journal=d); _ = eng.add_symbol(1)
    >>> eng.submit(1, 7, 0, 100, 5); eng.close()
    0
    >>> mc.Engine.recover(d).get(7)
    (1, 0, 100, 5)
    """
    from matchcore._engine import Engine
    return _recover_as(Engine, path, fsync=fsync, snapshot=snapshot, readonly=readonly,
                       trades=trades, record_events=record_events, **journal_options)


def _recover_as(cls, path, *, fsync: str | None = None, snapshot: bool = True,
                readonly: bool = False, trades: bool | None = None, record_events: bool = True,
                **journal_options):
    # recover(), the engine made of class cls (Engine.recover on a subclass): as unpickling
    # makes one, cls.__new__ without __init__
    path = str(refuse_bytes_dir(path))
    # every option is checked before the lock file is made or anything is cut (a truth test
    # took readonly=None for False, and cut the journal), and before the directory is looked
    # at, as Engine(journal=) and the readers do: a bad option named in its own words
    snapshot = _flag_arg(snapshot, "snapshot")
    readonly = _flag_arg(readonly, "readonly")
    if trades is not None:
        try:
            trades = _flag_arg(trades, "trades")
        except TypeError:
            # None is taken too (the journal's own choice): the flag rule's words leave it out
            raise TypeError(f"trades must be True, False or None, got {trades!r}") from None
    record_events = _flag_arg(record_events, "record_events")
    if readonly:
        # a read-only recovery makes no writer: a writer option was taken and ignored, while
        # the CLI refuses --fsync without --repair (trades= selects what is read: kept)
        check_journal_option_names(journal_options)
        given = (["fsync"] if fsync is not None else []) + list(journal_options)
        if given:
            raise ValueError(f"{given[0]} does not apply to a read-only recovery: it writes "
                             f"nothing (no writer is made to take it)")
    # (trades=None: the journal's own, known once it is scanned; checked as with capture)
    check_journal_options("batch" if fsync is None else fsync, trades is not False,
                          writers=not readonly, **journal_options)
    if not readonly:
        # the writers refuse a directory path this long: found once the torn tails were cut,
        # the snapshots set aside and the fills rewritten, it failed a recovery that had
        # already changed the directory
        _j.check_dir_length(path)
    require_directory(path)
    _require_start(path)
    report = RecoveryReport(path, readonly=readonly)
    # the lock first: no other engine may append while this one reads, cuts and takes over
    if not readonly and not os.path.lexists(os.path.join(path, "LOCK")):
        report.created_files.append(os.path.join(path, "LOCK"))
    lock_fd = None if readonly else lock_directory(path)
    try:
        # A read-only recovery takes no lock: a writing one may cut a segment (the fills of
        # commands it does not keep) between this one's scan and a later read of it, which
        # raised "... changed while it was read" for a directory being repaired. It reads the
        # directory again, as the writing recovery left it (journal inspect does the same).
        again = _RELISTS if readonly else 0
        while True:
            try:
                # (a copy: _recover adds the journal's own segment_bytes to the options)
                return _recover(cls, path, report, lock_fd, fsync, snapshot, readonly, trades,
                                record_events, dict(journal_options))
            except SegmentChanged:
                if not again:
                    raise
                again -= 1
                report = RecoveryReport(path, readonly=readonly)
    except BaseException:
        # a recovery that refuses the directory changes nothing: not even the LOCK it made
        # (held by this process until closed below, so no other engine is using it)
        if os.path.join(path, "LOCK") in report.created_files:
            try:
                os.unlink(os.path.join(path, "LOCK"))
            except OSError:
                pass
        raise
    finally:
        if lock_fd is not None:
            os.close(lock_fd)       # the engine's writer holds its own copy


def holds_journal(path) -> bool:
    """Whether the directory ``path`` holds an engine journal's command segment or a snapshot:
    something a recovery can start from (else recovery, ``journal inspect`` and ``journal
    trades`` refuse it). O(files in it)."""
    return bool(segment_files(path, KIND_COMMANDS) or list_snapshots(path))


def command_journal_end(path, cscan=None) -> int | None:
    """The last command seq whose fills recovery keeps in the trade journal (it cuts those of
    later commands): the command journal's last seq or, without a command segment, the seq
    of the newest valid snapshot, which a journal then starts after; None where the command
    journal is corrupt, or there is neither a command segment nor a valid snapshot, or
    recovery refuses the directory for where its journal starts (:func:`check_start`):
    recovery refuses such a directory before cutting anything. Read by ``journal trades``.
    O(journal bytes + the snapshot recovery starts from). ``cscan``: the command journal's
    :func:`scan_journal` (``keep_index=False``), if the caller has it already."""
    if cscan is None:
        cscan = scan_journal(path, KIND_COMMANDS, keep_index=False)
    end = _journal_end(path, cscan)
    if end is not None:
        try:
            check_start_of(path, cscan)
        except JournalError:
            return None
    return end


def _journal_end(path, cscan):
    # command_journal_end, of the scanned command journal
    if cscan.corrupt is not None:
        return None
    if cscan.segments:
        return cscan.last_seq
    return _newest_snapshot(path)[0]


def _newest_snapshot(path):
    # (seq, header) of the newest valid snapshot, the one a directory without a command
    # segment is recovered from; (None, None) without one
    for seq, fpath in reversed(list_snapshots(path)):
        try:
            return seq, load_listed_snapshot(fpath, seq)[1]
        except SnapshotFileError:
            continue
    return None, None


def trade_journal_start(path, cscan) -> int:
    """The first trade seq the trade journal of ``path`` can hold: its first segment's, or,
    without a trade segment, the one after the trade seq of the snapshot a directory without a
    command segment is recovered from (where a recovery starts the trade journal). The fills
    before it are in no file of the directory (a backup's snapshot restored without its
    journals, the first trade segments deleted). ``cscan``: the command journal's
    :func:`scan_journal`. Read by ``journal trades``. O(files in it + that snapshot)."""
    segs = segment_files(path, KIND_TRADES)
    if segs:
        return segs[0][0]
    if cscan.segments:
        return 1
    head = _newest_snapshot(path)[1]
    if head is None or head["trades"] is False or not head["trade_seq"]:
        return 1
    return head["trade_seq"] + 1


def recovers_with_capture(path, cscan) -> bool:
    """Whether recovery of directory ``path`` without ``trades=`` captures trades (and so
    reads the trade journal, refusing a corrupt one), its command journal scanned: ``cscan``
    (see :func:`_capture_of`; without a command segment, the newest valid snapshot decides).
    What ``journal inspect`` reports. O(files in it + that snapshot)."""
    return _capture_of(cscan, None if cscan.segments else _newest_snapshot(path)[1])


def _capture_of(cscan, head):
    """Whether recovery without ``trades=`` captures trades: as the newest command segment of
    the scanned journal records its engine did (on for segments of versions that recorded
    none); without a segment, as the snapshot of header ``head`` it starts from records."""
    made = [g.trades for g in cscan.segments if g.trades is not None]
    return (made[-1] if made else True if cscan.segments or head is None
            or head["trades"] is None else head["trades"])


def _require_start(path) -> None:
    if not holds_journal(path):
        # trade segments alone (kept apart from their command journal) are a journal: "no
        # journal" contradicted inspect, which lists their records
        if segment_files(path, KIND_TRADES):
            what = "no command journal, only the trade journal; no snapshot"
        elif lock_held(path):
            # Engine(journal=DIR) takes the LOCK before it makes its first segment: the
            # directory is a journal about to be written, not an abandoned one (as journal
            # inspect reports it, and a read-only recovery once that segment's header is begun)
            raise JournalError(f"{path}: nothing to recover yet: a live writer holds its LOCK "
                               f"and has made no segment", path)
        else:
            what = "no journal, no snapshot"
        raise JournalError(f"{path}: nothing to recover ({what})", path)


def check_start(path) -> None:
    """Raise :class:`JournalError` as ``recover(path, readonly=True)`` does when the directory
    holds nothing its journal can start from (only trade segments, a journal that starts after
    seq 1 with no snapshot of the state before it, a seeded journal whose seed snapshot is
    gone); corruption is not looked at (:func:`~matchcore.durability.inspect` reports it).
    ``journal inspect`` applies it. O(journal bytes + the snapshot used)."""
    path = str(refuse_bytes_dir(path))
    check_start_of(path, scan_journal(path, KIND_COMMANDS, keep_index=False))


def check_start_of(path, cscan) -> None:
    """:func:`check_start` of the directory ``path`` whose command journal ``cscan`` was
    scanned (``journal inspect``'s scan). O(files in it + the snapshot used)."""
    from matchcore._engine import Engine
    path = str(path)
    _require_start(path)
    if cscan.corrupt is not None:
        return
    report = RecoveryReport(path, readonly=True)
    eng, _, start = _start_state(Engine, path, cscan, report, [], True, True)
    _check_start(cscan, eng, start, path, report)


def _start_state(cls, path, cscan, report, foreign, snapshot, readonly, listed=None):
    """The state the replay of the scanned journal starts from: (engine, snapshot header or
    None, seq); ``foreign`` as for :func:`_pick_snapshot`. Raises :class:`JournalError` when
    no snapshot (nor the empty engine) can be the state the journal starts from."""
    eng = head = snap_file = None
    if snapshot:
        eng, head, snap_file = _pick_snapshot(path, cscan, report, foreign, cls, listed=listed)
    else:
        # (read-only too: it reports the ones a recovery that may write sets aside)
        _foreign_snapshots(path, cscan, report, foreign, listed)
        # the whole journal, from where it starts: a journal continuing a seed snapshot starts
        # from that state (replayed from an empty engine, it "diverged" at its first order);
        # so does a directory holding only its seed (no segment yet, no later snapshot: with
        # one, the journal it continued is gone, and the seed is not the state to go on from)
        # A journal that starts at a later seq continues the seed its first segment records
        # (Engine.recover(DIR) of a directory whose journal was gone: a backup's snapshot)
        if (cscan.segments[0].first_seq == 1 if cscan.segments
                else [seq for seq, _ in list_snapshots(path)] == [0]):
            eng, head, snap_file = _pick_snapshot(path, cscan, report, [], cls, seed_only=True,
                                                  listed=listed)
        elif cscan.segments and _base_of(cscan, cscan.segments[0].first_seq - 1) is not None:
            eng, head, snap_file = _pick_snapshot(path, cscan, report, [], cls, seed_only=True,
                                                  seed_seq=cscan.segments[0].first_seq - 1,
                                                  listed=listed)
    if eng is not None:
        report.snapshot, report.snapshot_seq = snap_file, head["seq"]
        start = head["seq"]
    else:
        if not cscan.segments:
            if not snapshot and list_snapshots(path):
                # not "no snapshot": they are there, and snapshot=False does not use them
                newest = os.path.basename(list_snapshots(path)[-1][1])
                raise JournalError(f"{path}: no journal to replay (snapshot=False), and no "
                                   f"valid seed snapshot-0 alone to start one from; its "
                                   f"snapshots (newest {newest}) are recovered with "
                                   f"snapshot=True", path)
            if report.skipped_snapshots:
                # which file and why (journal inspect lists them all): "(1 invalid)" alone
                # left the user to find the damaged file and its fault
                fpath, why = report.skipped_snapshots[0]        # the newest looked at
                raise JournalError(f"{path}: no journal and no valid snapshot "
                                   f"({len(report.skipped_snapshots)} invalid; the newest, "
                                   f"{os.path.basename(fpath)}: {_reason(fpath, why)})", path)
            if readonly and creation_leftovers(path) and lock_held(path):
                # a writer alive (Engine(journal=DIR)) is writing that header right now (a
                # writing recovery holds the LOCK itself: the creation was cut short)
                raise JournalError(f"{path}: nothing to recover yet: the journal's only "
                                   f"segment ({os.path.basename(cscan.drop[0])}) is being "
                                   f"created by a live writer (its LOCK is held): its header "
                                   f"is in flight", cscan.drop[0], 0)
            if creation_leftovers(path):
                raise JournalError(f"{path}: nothing to recover: the journal's only segment "
                                   f"({os.path.basename(cscan.drop[0])}, torn header) "
                                   f"holds no record, its creation was cut short; "
                                   f"Engine(journal={path!r}) starts a new journal there",
                                   cscan.drop[0], 0)
            if cscan.drop:
                # command segments are there, none holding a record: "no journal" of a
                # directory holding them (and, maybe, a trade journal) named nothing to repair
                why = (f": {cscan.tail[2]}" if cscan.tail and cscan.tail[0] in cscan.drop
                       else ": nothing valid")
                raise JournalError(f"{path}: nothing to recover: no snapshot, and no command "
                                   f"segment holds a record "
                                   f"({', '.join(map(os.path.basename, cscan.drop))}{why})",
                                   cscan.drop[0], 0)
            raise JournalError(f"{path}: nothing to recover (no journal, no snapshot)", path)
        if cscan.segments[0].first_seq != 1:
            first = cscan.segments[0].first_seq
            base = _base_of(cscan, first - 1)
            skipped = ("; snapshots skipped: " + "; ".join(
                f"{os.path.basename(f)}: {_reason(f, why)}"
                for f, why in report.skipped_snapshots) if report.skipped_snapshots else "")
            if not snapshot and base is not None:
                raise JournalError(f"{path}: journal starts at seq {first} from a seed "
                                   f"snapshot: {os.path.basename(base[0])} continues an "
                                   f"engine of state hash {base[1]:#018x}, but no valid "
                                   f"snapshot at seq {first - 1} holds that state{skipped}",
                                   cscan.segments[0].path, 0)
            if not snapshot:
                # not "no valid snapshot": snapshot=False looks at none but the seed the
                # journal records, and the state before this journal may be in one (its
                # earlier segments deleted)
                raise JournalError(f"{path}: journal starts at seq {first}: no record holds "
                                   f"the state before it, and snapshot=False replays only a "
                                   f"journal that starts at seq 1 or from the seed snapshot "
                                   f"its first segment records (this one records none); "
                                   f"recover with snapshot=True to start from a snapshot",
                                   cscan.segments[0].path, 0)
            # (the snapshots it skipped, and why: one damaged beside a journal whose earlier
            # segments were deleted was not named)
            raise JournalError(f"{path}: journal starts at seq {first} and "
                               f"no valid snapshot holds the state before it{skipped}",
                               cscan.segments[0].path, 0)
        from matchcore._engine import _engine_of_class
        eng = _engine_of_class(cls, cscan.stp)
        start = 0
    return eng, head, start


def _recover(cls, path, report, lock_fd, fsync, snapshot, readonly, trades, record_events,
             journal_options):
    # Segments are read again when needed (Segment.load): the whole journal is never in memory.
    # The replay reads them into the buffer the scan used, which still holds the last one.
    rbuf = ReadBuffer()
    # (read-only: looked at before the files are read as well as after, see live_writer below)
    live_at_start = readonly and lock_held(path)
    # Read-only, the snapshots are listed before the journal is scanned (as journal inspect
    # lists them): a live writer's snapshot names a seq its journal holds once the snapshot is
    # there, so the scan that follows holds it too. Listed after the scan, one the writer took
    # meanwhile was "skipped ...: ahead of the journal". (A writing recovery holds the LOCK.)
    listed = list_snapshots(path) if readonly else None
    cscan = scan_journal(path, KIND_COMMANDS, keep_index=False, into=rbuf)
    cscan.raise_if_corrupt()
    foreign = []
    eng, head, start = _start_state(cls, path, cscan, report, foreign, snapshot, readonly,
                                    listed)
    if trades is None:
        # the journal's own, as its newest command segment records it (on for segments of
        # versions that recorded none): recovered with capture on instead, a journal made
        # with trades=False had every fill of its replay written into a trade journal the
        # engine never kept, and went on capturing. Without a segment (all of them before
        # the snapshot deleted), the snapshot's engine's, as the snapshot records it.
        trades = _capture_of(cscan, head)
    report.trade_capture = trades
    report.torn_tail = cscan.tail
    last_seq = max(cscan.last_seq, start)

    # trade journal: keep complete commands the command journal holds
    tscan = scan_journal(path, KIND_TRADES, keep_index=False) if trades else None
    trade_start = None          # read-only: the trade seq a writing recovery's writer starts at
    if tscan is not None:
        tscan.raise_if_corrupt()
        report.trades_torn_tail = tscan.tail
        cut = _trade_cut(tscan, last_seq)
        kept_cmd = cut[2] if cut else 0
        next_trade = cut[3] + 1 if cut else (tscan.segments[0].first_seq if tscan.segments else
                                            (head["trade_seq"] + 1 if head else 1))
        report.trades_kept_through = kept_cmd
        kept_trade = cut[3] if cut else 0
        missing, unverified, from_seed = trades_lacking(cscan, tscan, head, cut)
        if missing or unverified:
            # The trade journal lacks fills of commands that the snapshot holds (lost, or
            # made while trade capture was off). A full replay can write them again when the
            # command journal starts at seq 1 and the trades kept are a prefix; otherwise
            # they are reported.
            origin = None
            if from_seed:
                # from the state the journal starts from: its seed snapshot-0 when it has one
                # (replayed from an empty engine, such a journal gave another state)
                # (a snapshot-0 that is not that state is set aside, as in any other pick)
                seed, seed_head, seed_file = _pick_snapshot(path, cscan, report, foreign, cls,
                                                            listed=listed,
                                                            seed_only=True)
                from matchcore._engine import _engine_of_class
                origin = seed if seed is not None else _engine_of_class(cls, cscan.stp)
                base = _base_of(cscan, 0)
                if base is not None and base[1] != engine_state_hash(origin):
                    origin = None       # its seed is not here: the snapshot stays
            if origin is not None and not readonly:
                report.skipped_snapshots.append(
                    (report.snapshot, "the trade journal lacks fills before it: whole journal "
                                      "replayed to write them again"))
                report.snapshot, report.snapshot_seq = seed_file, 0
                eng, head, start = origin, seed_head, 0
                next_trade = kept_trade + 1 if cut else (tscan.segments[0].first_seq
                                                         if tscan.segments else 1)
            else:
                rewritable = origin is not None
                if rewritable:
                    # (read-only) how many fills that whole replay writes before the snapshot,
                    # counted by replaying the journal up to it, into the scan's buffer as the
                    # replay below (what load_seq kept from it is read again when asked): the
                    # recorded outcomes tell only which commands filled, not in how many
                    # fills, and a snapshot taken without trade capture holds no trade seq,
                    # so the count fell short of the fills written and the last trade seq
                    # below of the writing recovery's
                    lost = np.zeros(1, np.int64)
                    _replay_journal(origin, cscan, rbuf, 0, head["seq"], kept_cmd + 1, None,
                                    lost)
                    cscan._loaded = None
                    missing = int(lost[0])
                    origin = seed = None        # (that engine is not kept)
                report.trades_missing = missing
                # (counted above by a replay where it could be rewritten; else from the
                # snapshot's trade seq, exact, or, taken without capture, from the commands)
                report.trades_missing_at_least = bool(
                    missing and not rewritable and head["trades"] is False)
                report.trades_unverified = unverified
                # read-only, the whole journal is not replayed to write fills it cannot write;
                # a recovery that may write would do it
                report.trades_rewritable = rewritable
                if rewritable:
                    # ... from where that replay starts them (the files it would create are
                    # named after it)
                    trade_start = kept_trade + 1 if cut else (tscan.segments[0].first_seq
                                                              if tscan.segments else 1)
                    # ... and the last trade seq it reaches: the lost fills before the
                    # snapshot are written first, after those kept (counted from the kept
                    # ones, it fell short of the writing recovery's by them)
                    next_trade = kept_trade + missing + 1
        # The fills after the snapshot's trade seq (which counts every fill when capture was
        # on) are of the commands replayed, and the replay writes again only those after the
        # last command the trade journal holds complete: fills before its first segment
        # (deleted, lost) were in no file, and "no fills to rewrite" read as a whole journal.
        base = 0 if head is None else head["trade_seq"] if head["trades"] is True else None
        if cut is not None and base is not None and tscan.segments[0].first_seq - 1 > base:
            report.trades_lost_at_start = tscan.segments[0].first_seq - 1 - base
    else:
        cut, kept_cmd, next_trade = None, 0, 1
        if segment_files(path, KIND_TRADES):
            # No capture from here on, but fills of commands this recovery cuts away (a torn
            # command tail whose fills were written) must still go: the commands journaled
            # next take their seqs, and a later recovery with capture took those fills for
            # theirs. A corrupt trade journal is left as it is: recovery with capture refuses
            # it until it is repaired. (Read-only too: it reports what a writing recovery
            # with the same options cuts and drops.)
            tscan = scan_journal(path, KIND_TRADES, keep_index=False)
            if tscan.corrupt is None:
                report.trades_torn_tail = tscan.tail
                cut = _trade_cut(tscan, last_seq)
                report.trades_kept_through = cut[2] if cut else 0
            else:
                report.trades_corrupt = tscan.corrupt
                tscan = None
        if tscan is None:
            report.trades_kept_through = report.last_trade_seq = None

    # the state the replay starts from is the one the journal continues (before anything is
    # cut, renamed or written)
    _check_start(cscan, eng, start, path, report)
    # what a recovery that may write files cuts, drops and renames: done below, or (read-only)
    # reported as what it would do
    cuts = []                                   # [(segment, size to cut it to)]
    trades_cut = 0                              # fill records among them
    if cscan.tail is not None and cscan.segments:
        last = cscan.segments[-1]
        if last.end < last.size:
            cuts.append((last, last.end))
    drops = list(cscan.drop)
    if tscan is not None:
        tcuts, tdrops, trades_cut = _trade_journal_cuts(tscan, cut)
        cuts += tcuts
        drops += tdrops + tscan.drop
    # Renamed, not deleted (they are the user's data), so that no later recovery can take
    # them for a state of the journal this engine now writes.
    aside = []
    for f in foreign:
        new = f + ".unused"
        k = 1
        while os.path.exists(new):
            new, k = f"{f}.unused{k}", k + 1
        aside.append((f, new))
    # the files a writing recovery makes to journal on: a first command segment where none is
    # left, a trade segment where none is kept (LOCK: see _recover_as)
    has_c = bool(cscan.segments)
    kept_t = [g for g in tscan.segments if g.path not in drops] if tscan else []
    to_create = [] if has_c else [_segment_path(path, KIND_COMMANDS, last_seq + 1)]
    if trade_start is None:
        trade_start = next_trade
    if trades and not kept_t:
        to_create.append(_segment_path(path, KIND_TRADES, trade_start))
    if "segment_bytes" not in journal_options:
        # the journal's own segment size, as its newest segment records it: recovered with
        # the default instead, a journal made with small segments went on preallocating
        # 64 MiB ones
        # (a size no writer takes, which only a foreign header can hold, is not kept: it made
        # the writer refuse the option the caller never gave, after the repairs)
        made = [g for g in kept_t + cscan.segments if g.segment_bytes is not None
                and writer_takes("segment_bytes", g.segment_bytes)]
        if made:
            journal_options["segment_bytes"] = made[-1].segment_bytes
            report.options_kept["segment_bytes"] = made[-1].path
    if fsync is None:
        # the journal's own policy, as its newest command segment records it ("batch" for
        # segments of versions that recorded none): recovered with "batch" instead, an
        # engine made with "always" came back with weaker durability than it had
        made = [g.fsync for g in cscan.segments if g.fsync is not None]
        fsync = made[-1] if made else "batch"
    # A writer given options that the header of the segment it would append to records
    # otherwise starts a new segment (one holding no record is replaced): appended to, that
    # header went on telling the next recovery the old value, which it then took for the
    # journal's own.
    seg_bytes = journal_options.get("segment_bytes",
                                    open_writers.__kwdefaults__["segment_bytes"])
    new_c = has_c and _options_differ(cscan.segments[-1], fsync, seg_bytes, trades,
                                      report.options_changed)
    new_t = bool(trades and kept_t and _options_differ(kept_t[-1], None, seg_bytes, None,
                                                      report.options_changed))
    if new_c:
        to_create.append(_segment_path(path, KIND_COMMANDS, last_seq + 1))
    if new_t:
        to_create.append(_segment_path(path, KIND_TRADES, trade_start))
    # a new segment at the name of an empty last one replaces it: it exists already
    to_replace = [f for f in to_create if os.path.lexists(f) and f not in drops]
    to_create = [f for f in to_create if f not in to_replace]
    jc = jt = None
    if readonly:
        if not os.path.lexists(os.path.join(path, "LOCK")):
            report.files_to_create.append(os.path.join(path, "LOCK"))
        report.lock_refused = lock_refusal(path)
        report.files_to_create += to_create
        report.files_to_replace = to_replace
        report.bytes_to_cut = sum(seg.size - size for seg, size in cuts)
        report.files_to_drop = drops
        report.snapshots_to_set_aside = aside
        report.trades_to_cut = trades_cut
        report.temporaries_to_remove = (remove_stale_temporaries(path, legacy=True, remove=False)
                                        + segment_temporaries(path))
        report.live_writer = lock_held(path)
        if live_at_start and not report.live_writer:
            # the writer closed while the files were read (as in journal inspect): its last
            # calls' fills were read as those of commands not kept, to cut, with the LOCK free
            # by then. Read again, as the writer left it.
            raise SegmentChanged(f"the writer of {path} closed while it was read", path, 0)
        if report.live_writer:
            # a writer alive appends as this reads: its tails are in flight, and no recovery
            # may repair anything while it holds the LOCK (as journal inspect says)
            report.in_flight, report.torn_tail = report.torn_tail, None
            report.trades_in_flight, report.trades_torn_tail = report.trades_torn_tail, None
            report.bytes_to_cut = report.trades_to_cut = 0
            report.files_to_drop, report.snapshots_to_set_aside = [], []
            report.temporaries_to_remove = []
    else:
        # A segment replaced is written as "<segment>.new" first, then renamed over it. What
        # stands at that name and is no leftover of a segment writer (removed below) is not
        # this recovery's to take: through a symbolic link the writer overwrote its target
        # and renamed the link over the segment, a user's file was truncated into the
        # segment, and a directory failed the start once the repairs were made. Refused
        # before anything is changed.
        leftovers = set(segment_temporaries(path))
        for f in to_replace:
            new_name = f + ".new"
            if os.path.lexists(new_name) and new_name not in leftovers:
                raise FileExistsError(
                    errno.EEXIST, f"recovery replaces {os.path.basename(f)} by a new segment "
                                  f"written as {os.path.basename(new_name)} first, and that "
                                  f"name holds something no segment writer left (a directory, "
                                  f"a symbolic link, or a file that does not start like a "
                                  f"segment); move it away and recover again", new_name)
        report.trades_cut = trades_cut
        # cut torn tails and drop files that hold nothing valid, then open the writers
        for seg, size in cuts:
            report.cut_bytes += seg.size - size
            _truncate(seg.path, size)
            seg.end = size
        for f in drops:
            try:
                os.unlink(f)
            except OSError as exc:
                # (os.unlink's bare "Permission denied: SEGMENT" did not say why recovery
                # deletes a segment; the repairs made so far stand, as after any I/O error)
                raise OSError(exc.errno, f"{exc.strerror}: recovery could not drop the "
                                         f"trailing segment (nothing valid in it)", f) from exc
        report.dropped_files = drops
        # A writer killed with a segment open left the blocks it preallocated past its end
        # (fallocate, keep size), which only a writer appending to it gives back when it
        # closes: a last segment that no writer appends to (a new one is started for other
        # options, or trade capture is off) gives them back now, else it kept them for good.
        for f in ([cscan.segments[-1].path] if new_c else []) + (
                [kept_t[-1].path] if kept_t and (new_t or not trades) else []):
            os.truncate(f, os.path.getsize(f))
        # a user's file that merely ends in .mcs.tmp is not one, nor a live writer's (an
        # engine without a journal may write a snapshot here without the LOCK)
        stale = remove_stale_temporaries(path, legacy=True) + segment_temporaries(path,
                                                                                   remove=True)
        report.removed_temporaries = stale
        for f, new in aside:
            try:
                os.rename(f, new)
            except OSError as exc:
                raise OSError(exc.errno, f"{exc.strerror}: recovery could not set the snapshot "
                                         f"aside as {os.path.basename(new)} (not a state of "
                                         f"this journal)", f) from exc
            report.set_aside.append((f, new))
        if foreign:
            fsync_dir(path)
        report.modified = bool(drops or stale or foreign) or report.cut_bytes > 0
        # The writer starts with every recovered record counted as durable (durable_seq), but
        # an engine that crashed under fsync="never" (or within a "batch" window) may have left
        # them in the page cache only, its earlier segments included: a power loss after
        # recovery would then lose records below durable_seq, and the commands journaled
        # after them with them. Everything kept is made durable before the writers attach.
        report.synced_files = _sync_files([g.path for g in cscan.segments] +
                                          [g.path for g in kept_t], path)
        # the CRC of the record at last_seq, which the engine's next snapshot will store
        last_crc = _record_crc(cscan, last_seq)
        if last_crc is None and head is not None and head["seq"] == last_seq:
            last_crc = head["anchor"]
        # a segment started in place of an empty one keeps the state hash it records
        replace_c = new_c and (_segment_path(path, KIND_COMMANDS, last_seq + 1)
                               == cscan.segments[-1].path)
        replace_t = new_t and _segment_path(path, KIND_TRADES, next_trade) == kept_t[-1].path
        try:
            jc, jt = open_writers(
                path, cscan.stp if has_c else int(eng.stp), fsync, new=False, trades=trades,
                next_seq=last_seq + 1, next_trade_seq=next_trade,
                append_size=cscan.segments[-1].end if has_c and not new_c else -1,
                trade_append_size=(os.path.getsize(kept_t[-1].path) if kept_t and not new_t
                                   else -1),
                lock_fd=lock_fd, last_crc=-1 if last_crc is None else last_crc,
                # a new journal (no segment left) starts from the engine as it is now
                base_hash=(cscan.segments[-1].base_hash if replace_c else None) if has_c else
                engine_state_hash(eng), replace=replace_c, trade_replace=replace_t,
                **journal_options)
        except BaseException:
            # Writers that could not start (a full disk) take away the segment files they
            # made, which hold no record, as Engine(journal=DIR) does: left, a segment with a
            # torn header was listed as damage until the next recovery dropped it. (The
            # repairs above stand: they are the ones any recovery makes.)
            _remove_made(path, to_create)
            raise

    # Replay the tail, one segment in memory at a time. The segment bytes and the extracted
    # commands go into buffers reused from segment to segment and chunk to chunk (see
    # ReadBuffer): fresh ones cost more in page faults than the replay itself.
    # A replay that fails (a diverging record, memory running out) must not leave the writers
    # opened above alive with its traceback: they hold the directory's LOCK and its segment
    # files, and the next recover() (the remedy for MemoryError) was told the directory is
    # in use for as long as the exception was kept (an except block, an interactive session).
    try:
        cscan._loaded = None
        # read-only with trade capture: the fills a writer would write, counted
        fills = np.zeros(1, np.int64) if jt is None and readonly and trades else None
        report.replayed_commands, report.replayed_configs = _replay_journal(
            eng, cscan, rbuf, start, None, kept_cmd + 1, jt, fills)
        if jt is not None:
            report.trades_rewritten = jt.next_seq - next_trade
            report.last_trade_seq = jt.next_seq - 1
            jt.sync()
        elif fills is not None:
            # read-only: the last trade seq once the fills to rewrite are written after those
            # kept, as a writing recovery reports it (it said 0 where no trade was kept)
            report.last_trade_seq = next_trade - 1 + int(fills[0])
        elif cut:
            report.last_trade_seq = cut[3]
        if fills is not None and not report.live_writer:
            # (a live writer's last fills may be unwritten as this reads: in flight, not
            # fills a recovery writes again, which none may run until it closes; journal
            # inspect lists none there either)
            report.trades_to_rewrite = int(fills[0])
    except BaseException as exc:
        _close_quietly(jt, jc)
        if isinstance(exc, JournalError) and jt is not None and jt.os_errno is not None:
            raise _rewrite_failed(path, jt.os_errno) from exc
        raise
    report.last_seq = last_seq
    if jc is not None:
        report.created_files += to_create
        report.replaced_files = to_replace
        eng._attach_journal(jc, jt)
    # after the replay, which needs the fill events to rewrite missing trades, and with the
    # journal attached: trade capture keeps the books recording, as in a fresh engine
    eng._set_record_events(record_events)
    # the hash the journal and the snapshots record, and Engine.recover reports for the same
    # directory: a subclass's override of state_hash() may hash more (or something else)
    report.state_hash = engine_state_hash(eng)
    eng.recovery_report = report
    return eng


def _rewrite_failed(path, err) -> JournalError:
    """The error of a recovery whose trade writer failed (errno ``err``) writing the fills it
    rewrites: the writer's own ("the engine refuses further commands; recover from the journal
    on disk") spoke of an engine that recovery had not yet returned, and named no segment."""
    segs = segment_files(path, KIND_TRADES)
    seg = segs[-1][1] if segs else None
    where = f" ({os.path.basename(seg)})" if seg else ""
    return JournalError(f"{path}: recovery could not write the fills it rewrites into the trade "
                        f"journal{where}: {os.strerror(err)}; the repairs made before the "
                        f"replay stand, and the fills written so far are valid (the next "
                        f"recovery goes on from them): recover again once the cause is gone",
                        seg)


def _replay_journal(eng, cscan, rbuf, start, stop, trades_from, jt, fills):
    """Replay the scanned journal's records after seq ``start`` (through ``stop``; None: to
    its end) into ``eng``: config records through the engine's methods, order commands in
    compiled code, each outcome checked (:class:`JournalError` where one differs). The fills
    of commands from seq ``trades_from`` on are written to the trade writer ``jt`` or, without
    one, counted in ``fills[0]`` (None: neither). The segments are read into ``rbuf``, one at
    a time. Returns (commands, config records) replayed. O(journal bytes replayed)."""
    out = (np.empty(_REPLAY_CHUNK, dtype=COMMAND_DTYPE), np.empty(_REPLAY_CHUNK, np.uint64),
           np.empty(_REPLAY_CHUNK, np.int64))
    commands = configs = 0
    for seg in cscan.segments:
        if not seg.records or seg.last_seq <= start:
            continue
        if stop is not None and seg.first_seq > stop:
            break
        seg = seg.load(rbuf)
        idx = seg.index
        sel = np.flatnonzero((idx["seq"] > start) if stop is None else
                             (idx["seq"] > start) & (idx["seq"] <= stop))
        if not len(sel):
            continue
        types = idx["type"][sel]
        breaks = np.flatnonzero(types != _j.REC_COMMAND)
        pos = 0
        for b in list(breaks.tolist()) + [len(sel)]:
            for lo in range(pos, b, _REPLAY_CHUNK):
                part = sel[lo:min(b, lo + _REPLAY_CHUNK)]
                offs = np.ascontiguousarray(idx["offset"][part])
                cmds, seqs, results = _j.extract_commands(seg.data, offs, out)
                # a fill written again carries its command's journal time
                done, gave = eng._replay(cmds, seqs, results, idx["ts_ns"][part],
                                         trades_from, jt, fills)
                if done < len(cmds):
                    raise JournalError(
                        f"replay diverged at seq {int(seqs[done])} ({seg.path}, offset "
                        f"{int(offs[done])}): recorded outcome "
                        f"{_outcome_text(int(results[done]))}, the engine gave "
                        f"{_outcome_text(gave)} (journal written by a different matching "
                        f"version?)",
                        seg.path, int(offs[done]))
                commands += len(cmds)
            if b < len(sel):
                off = int(idx["offset"][sel[b]])
                _apply_config(eng, seg, off, cscan.records + _PREALLOC_SLACK)
                configs += 1
            pos = b + 1
    return commands, configs


def _outcome_text(outcome: int) -> str:
    """A journaled outcome as a reader needs it: the qty executed, or -reason with the
    reason's name (``-6 (ORDER_NOT_FOUND)``), so that a divergence says what each side did."""
    if outcome < 0:
        try:
            return f"{outcome} ({Reason(-outcome).name})"
        except ValueError:
            pass
    return str(outcome)


# Commands extracted and replayed per call: large enough that the call's overhead vanishes
# (the engine checks every 16,384 commands whether its books have become big), small enough
# that the three reused arrays (4 MiB) stay warm.
_REPLAY_CHUNK = 65536


# Preallocation of a replayed add_symbol: the journaled capacity, but never more orders than
# the whole journal could place plus this margin. A damaged capacity field (2**40, say) must not
# make recovery allocate (or try to) terabytes; the journaled figure is still recorded, so the
# engine's next snapshot keeps it, and a book grows on demand past its preallocation anyway.
_PREALLOC_SLACK = 1024


def _apply_config(eng, seg, off, prealloc_limit):
    # The Engine's own methods (a subclass's overrides are not called, as unpickling calls
    # none), without the check that the limits together accept some order: the journal holds
    # what the engine did, and versions before that check accepted any limits.
    name, seq, f = _j.decode_config(seg.data, off)
    try:
        if name == "add_symbol":
            cap = f["capacity"]
            eng._add_symbol(f["symbol"], f["name"], min(cap, prealloc_limit), f["limits"], False)
            if cap > prealloc_limit:
                eng._set_capacity(f["symbol"], cap)
        elif name == "set_limits":
            eng._set_limits(f["symbol"], f["limits"], False)
        else:
            eng._set_reference_price(f["symbol"], f["price"], False)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise JournalError(f"replay of {name} (seq {seq}, {seg.path}, offset {off}) failed: "
                           f"{exc}", seg.path, off) from None
    except MemoryError as exc:
        # The preallocation is bounded by what the journal can place: running out of memory
        # says nothing against the record (a JournalError would tell the user to cut the
        # journal there)
        raise MemoryError(f"matchcore: out of memory replaying the journal at seq {seq} "
                          f"({name}) {exc}".rstrip()) from None
