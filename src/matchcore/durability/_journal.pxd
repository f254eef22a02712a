# cython: language_level=3
# Journal segments and records: the one definition of their byte layouts (little-endian, packed),
# the writer (compiled, no Python object per record) and the scanner the reader, recovery and
# `matchcore journal inspect` share.
#
# A segment file = one segment header + records. A record = mc_rec_header + payload; `length`
# covers the whole record and is a multiple of 8, `crc` is CRC-32C over bytes 8..length.

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint16_t, uint8_t
from matchcore._core cimport mc_event, mc_command

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass

cdef enum:
    MC_J_VERSION = 1
    MC_J_SEG_HEADER = 64         # bytes of a segment header
    MC_J_REC_HEADER = 32         # bytes of a record header
    MC_J_MAX_RECORD = 8192       # no record is longer (a symbol name is at most 4096 bytes)
    MC_J_MAX_NAME = 4096

    # segment kinds
    MC_J_KIND_COMMANDS = 1
    MC_J_KIND_TRADES = 2

    # segment header flags
    MC_J_SEG_BASE = 1            # base_hash holds the state hash the records continue
    MC_J_SEG_LIMIT = 2           # seg_limit holds the writer's segment_bytes
    MC_J_SEG_POLICY = 4          # flags bits 8..15 hold the writer's fsync policy (MC_J_NEVER,
                                 # MC_J_BATCH or MC_J_ALWAYS; command segments only)
    MC_J_SEG_POLICY_SHIFT = 8
    MC_J_SEG_TRADES = 8          # bit 4 (MC_J_SEG_TRADES_ON) holds the writer's trade capture
    MC_J_SEG_TRADES_ON = 16      # (the engine's trades= choice; command segments only)

    # record types
    MC_J_REC_COMMAND = 1
    MC_J_REC_ADD_SYMBOL = 2
    MC_J_REC_SET_LIMITS = 3
    MC_J_REC_SET_REF_PRICE = 4
    MC_J_REC_TRADE = 16

    # fsync policies
    MC_J_NEVER = 0
    MC_J_BATCH = 1               # group commit: a syncer thread, every batch_ns or batch_records
    MC_J_ALWAYS = 2
    MC_J_ON_SYNC = 3             # internal (trade capture): fsync at sync(), roll and close only

    # scan outcome: why a segment's valid records end before its end of file
    MC_J_OK = 0
    MC_J_E_TRUNCATED = 1         # fewer bytes left than a record header or than `length`
    MC_J_E_LENGTH = 2            # length out of range or not a multiple of 8
    MC_J_E_CRC = 3               # CRC mismatch
    MC_J_E_TYPE = 4              # record type not allowed in this kind of segment
    MC_J_E_SEQ = 5               # a valid record out of sequence
    MC_J_E_SIZE = 6              # record of a known type with the wrong length

cdef packed struct mc_seg_header:
    char magic[8]                # b"MCJOURNL"
    uint32_t version
    uint32_t header_size         # MC_J_SEG_HEADER
    uint32_t kind                # MC_J_KIND_*
    uint32_t stp                 # the engine's self-trade prevention mode
    uint64_t first_seq           # seq of the segment's first record
    int64_t created_ns           # wall clock (CLOCK_REALTIME) when the segment was created
    uint32_t flags               # bit 0 (MC_J_SEG_BASE): base_hash is set (earlier versions: 0);
                                 # bit 2 (MC_J_SEG_POLICY): bits 8..15 are the fsync policy of
                                 # the writer, kept by a recovered one not given its own;
                                 # bit 3 (MC_J_SEG_TRADES): bit 4 says whether the engine
                                 # captured trades, kept likewise
    uint64_t base_hash           # state hash of the engine the records continue (before
                                 # first_seq): set on the segment a writer starts a journal with
    uint64_t seg_limit           # bit 1 (MC_J_SEG_LIMIT): the segment_bytes of the writer, kept
                                 # by a recovered one not given its own (earlier versions: 0)
    uint32_t crc                 # CRC-32C of the 60 bytes before it

cdef packed struct mc_rec_header:
    uint32_t length              # whole record, header included; a multiple of 8
    uint32_t crc                 # CRC-32C of bytes 8..length
    uint16_t type                # MC_J_REC_*
    uint16_t reserved16
    uint32_t reserved32
    uint64_t seq                 # commands: one sequence over every inbound command; trades: fill seq
    int64_t ts_ns                # wall clock (CLOCK_REALTIME, ns) when its call was journaled

cdef packed struct mc_rec_command:          # 88 bytes: an order command and its outcome
    mc_rec_header h
    mc_command cmd               # as applied (48 bytes, COMMAND_DTYPE)
    int64_t result               # executed qty >= 0, or -reason: replay checks it matches

cdef packed struct mc_rec_add_symbol:       # 104 bytes + name, padded to 8
    mc_rec_header h
    uint32_t symbol
    uint32_t name_len            # 0xFFFFFFFF: no name; else bytes of UTF-8 name after the record
    int64_t capacity
    int64_t limits[7]            # tick, min_price, max_price, ref_price, band, max_qty, max_notional

cdef packed struct mc_rec_set_limits:       # 96 bytes
    mc_rec_header h
    uint32_t symbol
    uint32_t mask                # bit i set: limits[i] given
    int64_t limits[7]

cdef packed struct mc_rec_ref_price:        # 48 bytes
    mc_rec_header h
    uint32_t symbol
    uint32_t reserved
    int64_t price

cdef packed struct mc_rec_trade:            # 104 bytes: one fill
    mc_rec_header h
    uint64_t cmd_seq             # seq of the taker's command in the command journal
    int64_t event_ts_ns          # the engine's clock for the fill (the command's ts_ns)
    uint64_t taker_id
    uint64_t maker_id
    int64_t price
    int64_t qty
    uint64_t taker_owner
    uint64_t maker_owner
    uint32_t symbol
    uint8_t taker_side
    uint8_t last                 # 1 on the command's last fill: a command's fills are complete
    uint16_t reserved

cdef struct mc_journal:
    int fd                       # current segment (-1 when closed)
    int dir_fd
    uint32_t kind
    uint32_t stp
    int policy
    int err                      # errno of the first I/O failure; the journal is dead after it
    int sync_err                 # errno of a failed fsync in the syncer thread
    uint8_t* buf                 # records appended but not yet written
    int64_t n
    int64_t cap
    int64_t seg_size             # bytes of the current segment on file (written)
    int64_t seg_limit
    int64_t now_ns               # wall clock read at the call's first record (0: none yet)
    uint64_t next_seq
    uint64_t written_seq         # last seq handed to write(2) (atomic: the syncer reads it)
    uint64_t durable_seq         # last seq known on stable storage (atomic)
    int64_t buffered_records     # appended, not yet written
    int64_t unsynced             # records written since the last fsync (or syncer kick)
    int64_t batch_records
    int64_t batch_ns
    int64_t segments_created
    int64_t fsyncs               # fdatasync calls on segments (both threads)
    uint32_t last_crc            # commands: CRC of the last record appended (snapshots name it)
    # group commit: the syncer thread sleeps on `cond` (under `lock`) for batch_ns or until
    # kicked; it holds `fd_lock` while it syncs, and so does whoever closes or swaps `fd`.
    pthread_t thread
    pthread_mutex_t lock
    pthread_cond_t cond
    pthread_mutex_t fd_lock
    int thread_on
    int owner_pid                # the process that made it: a forked child must not touch it
    int stop
    int kick
    int closed_unsynced          # policy never: a segment was closed without fsync since the
                                 # last sync(), which must reach it too
    int dir_unsynced             # policy never: a segment was created, its name not fsynced in
                                 # the directory, since the last sync()
    uint64_t base_hash           # written into the next segment header when has_base
    int has_base
    int trades                   # commands: the engine's trade capture, recorded in every
                                 # segment header (1 on, 0 off, -1 not recorded)
    int replace                  # the next segment made takes the place of an empty one of
                                 # the same name (written aside, then renamed over it)
    char dir[4096]
    char prefix[32]

cdef uint32_t mc_crc32(const uint8_t* p, int64_t n) noexcept nogil   # CRC-32C
cdef int64_t mc_wall_ns() noexcept nogil
cdef int mc_journal_command(mc_journal* j, const mc_command* c, int64_t result) noexcept nogil
cdef int mc_journal_fills(mc_journal* j, uint64_t cmd_seq, const mc_event* ev,
                          int64_t n, mc_journal* commands, int64_t ts_ns) noexcept nogil
cdef int mc_journal_commit(mc_journal* j) noexcept nogil
cdef int mc_journal_commit_call(mc_journal* jc, mc_journal* jt) noexcept nogil
cdef int mc_journal_sync(mc_journal* j) noexcept nogil


cdef class JournalWriter:
    cdef mc_journal* _j
    cdef readonly object path
    cdef int lock_fd             # the directory's LOCK file, held (flock) while this writes
    cdef uint64_t _start_seq     # next_seq when made: records appended since are this writer's
    cdef int64_t _prior_crc      # CRC of the record before _start_seq if known, else -1
    cdef object __weakref__      # for the registry a forked child's writers are found in
    # the busy byte of the Engine the writer is attached to (NULL: none): its public sync(),
    # commit() and close() are calls on that engine, refused while another thread uses it
    cdef uint8_t* host_busy
    # set by close(): a descriptor below 0 alone is no sign of it, as a segment roll (under way
    # in the thread of an engine call, without the GIL) closes one segment before opening the
    # next
    cdef bint _closed
    # the segment an I/O failure hit, fixed when first seen (None: none seen yet): once the
    # writer is closed, its descriptor gone, it can no longer be told from the files
    cdef object _failed_at
    cdef int _check(self) except -1
    cdef str _failure(self, str when)
    cdef int _enter(self) except -1
    cdef void _leave(self, int entered) noexcept
    cdef object _sync(self)
    cdef object _close(self)
    cdef void _close_dir_and_lock(self) noexcept
    cdef void _forked(self) noexcept
