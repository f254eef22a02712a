# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Journal segments and records, compiled: the writer, the scanner and the record decoders.

The byte layouts are the packed structs in ``_journal.pxd``; the numpy dtypes below are derived
from them (sizes and offsets checked at import), and every reader (recovery, ``read_trades``,
``matchcore journal inspect``) goes through :func:`scan_segment` and the decoders, which
``_journal_read.pxi`` holds (included here: one C unit).

Checksum: CRC-32C (``include/mc_crc32c.h``: the SSE4.2 crc32 instruction, a table elsewhere).
Not zlib's crc32: on records this short it costs about 180 ns (zlib 1.2.13, 80 bytes), more
than matching the command, against about 10 ns for the instruction; and no CRC-32C package
exposes a C function callable without the GIL. :func:`crc32c` gives the same value from Python.

Group commit (``fsync="batch"``): a syncer thread (pthreads, no Python) wakes every
``batch_us`` or when ``batch_records`` records have been written since its last sync, and
fdatasyncs what the writer has handed to the OS; the writer waits for a disk only at a segment
roll, where it syncs the segment it closes (which keeps no descriptor the syncer could sync) and
the new one's name.
"""

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint16_t, uint8_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset, strlen, memcmp
from libc.stdio cimport snprintf
from libc.errno cimport errno, EINTR

import os
import weakref

import numpy as np
cimport numpy as cnp

from matchcore._core cimport (
    mc_event, mc_command, MC_EV_FILL, MC_BUSY_JOURNAL, MC_BUSY_HELD, mc_held_by_me,
    mc_raise_busy,
)
from matchcore._core import COMMAND_DTYPE
from matchcore.durability.errors import JournalError

cnp.import_array()

cdef extern from "mc_crc32c.h" nogil:
    uint32_t mc_crc32c(const uint8_t* p, size_t n)
    int mc_crc32c_impl()
    void mc_crc32c_force_table(int on)

cdef extern from "mc_atomic.h" nogil:
    uint64_t mc_load_u64(const uint64_t* p)
    void mc_store_u64(uint64_t* p, uint64_t v)
    void mc_max_u64(uint64_t* p, uint64_t v)
    int mc_load_int(const int* p)
    void mc_store_int(int* p, int v)

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec* ts)
    enum: CLOCK_REALTIME
    enum: CLOCK_MONOTONIC

cdef extern from "<pthread.h>" nogil:
    int pthread_create(pthread_t* t, const void* attr, void* (*fn)(void*) noexcept nogil,
                       void* arg)
    int pthread_join(pthread_t t, void** ret)
    int pthread_mutex_init(pthread_mutex_t* m, const void* attr)
    int pthread_mutex_destroy(pthread_mutex_t* m)
    int pthread_mutex_lock(pthread_mutex_t* m)
    int pthread_mutex_unlock(pthread_mutex_t* m)
    int pthread_cond_init(pthread_cond_t* c, const void* attr)
    int pthread_cond_destroy(pthread_cond_t* c)
    int pthread_cond_signal(pthread_cond_t* c)
    int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const timespec* t)

cdef extern from "<fcntl.h>" nogil:
    int c_open "open"(const char* path, int flags, int mode)
    enum: O_WRONLY
    enum: O_RDONLY
    enum: O_CREAT
    enum: O_EXCL
    enum: O_TRUNC
    enum: O_APPEND
    enum: O_CLOEXEC
    enum: O_DIRECTORY

cdef extern from *:
    """
    #include <errno.h>
    #include <fcntl.h>
    #include <unistd.h>
    #include <sys/stat.h>
    #include <sys/statvfs.h>
    #ifndef FALLOC_FL_KEEP_SIZE
    #define FALLOC_FL_KEEP_SIZE 0x01
    #endif
    /* Reserve a segment's blocks up to `size` (best effort). A reservation that does not fit
       in the file system's free space is not tried: ext4 keeps the blocks a failing
       fallocate took before it ran out, so a segment larger than the free space held the
       whole file system full (the next file made, the trade segment, failed on ENOSPC, and
       so did every other writer of that disk until the segment closed). A fallocate that
       fails all the same (another writer took the room meanwhile) gives back what it took:
       a truncation to the file's own size drops the blocks past its end. */
    static int mc_prealloc(int fd, long long size) {
    #ifdef __linux__
        struct stat st;
        struct statvfs vfs;
        if (fstat(fd, &st) != 0 || size <= (long long)st.st_size)
            return -1;
        if (fstatvfs(fd, &vfs) == 0 && (unsigned long long)(size - st.st_size) >
                (unsigned long long)vfs.f_bavail * (unsigned long long)vfs.f_frsize)
            return -1;
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size) == 0)
            return 0;
        int e = errno;
        if (ftruncate(fd, st.st_size) != 0) { /* the error reported is fallocate's */ }
        errno = e;
        return -1;
    #else
        (void)fd; (void)size; return -1;
    #endif
    }
    """
    int mc_prealloc(int fd, long long size) nogil

cdef extern from *:
    """
    #include <unistd.h>
    #ifdef __linux__
    #include <sys/syscall.h>
    #endif
    /* syncfs(2): every dirty page of the file system holding fd, the segments this writer
       closed (and no longer has descriptors of) included */
    static int mc_syncfs(int fd) {
    #if defined(__linux__) && defined(SYS_syncfs)
        return (int)syscall(SYS_syncfs, fd);
    #else
        (void)fd; sync(); return 0;
    #endif
    }
    """
    int mc_syncfs(int fd) nogil

cdef extern from *:
    """
    #include <pthread.h>
    #include <time.h>
    /* The syncer times its waits on CLOCK_MONOTONIC. On the condition variable's default
       CLOCK_REALTIME, a wall clock stepped back (NTP, an operator setting the date) while the
       syncer waited moved its deadline that far into the future: nothing written under
       "batch" was fdatasynced until the clock caught up, or batch_records records came (an
       hour back held a quiet engine's acknowledged commands off the disk for an hour, where
       batch_us promises 2 ms). */
    #if defined(__linux__)
    #define MC_SYNCER_CLOCK CLOCK_MONOTONIC
    #else
    #define MC_SYNCER_CLOCK CLOCK_REALTIME
    #endif
    static int mc_syncer_cond_init(pthread_cond_t* c) {
    #if defined(__linux__)
        pthread_condattr_t a;
        int rc = pthread_condattr_init(&a);
        if (rc != 0)
            return rc;
        rc = pthread_condattr_setclock(&a, MC_SYNCER_CLOCK);
        if (rc == 0)
            rc = pthread_cond_init(c, &a);
        pthread_condattr_destroy(&a);
        return rc;
    #else
        return pthread_cond_init(c, NULL);
    #endif
    }
    """
    int mc_syncer_cond_init(pthread_cond_t* c) nogil
    enum: MC_SYNCER_CLOCK

cdef extern from "<stdio.h>" nogil:
    int c_rename "rename"(const char* old, const char* new)

cdef extern from "<unistd.h>" nogil:
    ssize_t c_write "write"(int fd, const void* buf, size_t n)
    int c_close "close"(int fd)
    int c_unlink "unlink"(const char* path)
    int c_fdatasync "fdatasync"(int fd)
    int c_ftruncate "ftruncate"(int fd, long long size)
    int c_getpid "getpid"()

# ----------------------------------------------------------------------------------------------
# layout constants, mirrored to Python
# ----------------------------------------------------------------------------------------------

VERSION = MC_J_VERSION
SEG_HEADER = MC_J_SEG_HEADER
SEG_LIMIT = MC_J_SEG_LIMIT     # segment header flag: seg_limit records the writer's segment_bytes
SEG_POLICY = MC_J_SEG_POLICY   # segment header flag: flags bits 8..15 record the fsync policy
SEG_TRADES = MC_J_SEG_TRADES   # segment header flag: SEG_TRADES_ON records the trade capture
SEG_TRADES_ON = MC_J_SEG_TRADES_ON
REC_HEADER = MC_J_REC_HEADER
MAX_RECORD = MC_J_MAX_RECORD
MAX_NAME = MC_J_MAX_NAME
# The longest journal directory (bytes of its absolute path) a writer takes: its segment names,
# their .new temporaries and the snapshot temporaries made beside them must stay within the
# writer's name buffers and PATH_MAX.
MAX_DIR_BYTES = 3999


def check_dir_length(path):
    """Raise ValueError for a journal directory whose absolute path is longer than
    :data:`MAX_DIR_BYTES` bytes (the writer could not name its files there). O(len(path))."""
    dir_b = os.fsencode(os.path.abspath(path))
    if len(dir_b) > MAX_DIR_BYTES:
        raise ValueError(f"journal directory {os.fsdecode(dir_b)!r}: its path is {len(dir_b)} "
                         f"bytes long, at most {MAX_DIR_BYTES} are taken (the segment and "
                         f"snapshot file names made in it must fit in PATH_MAX)")
KIND_COMMANDS = MC_J_KIND_COMMANDS
KIND_TRADES = MC_J_KIND_TRADES
REC_COMMAND = MC_J_REC_COMMAND
REC_ADD_SYMBOL = MC_J_REC_ADD_SYMBOL
REC_SET_LIMITS = MC_J_REC_SET_LIMITS
REC_SET_REF_PRICE = MC_J_REC_SET_REF_PRICE
REC_TRADE = MC_J_REC_TRADE
POLICIES = {"never": MC_J_NEVER, "batch": MC_J_BATCH, "always": MC_J_ALWAYS}
RECORD_TYPES = {MC_J_REC_COMMAND: "command", MC_J_REC_ADD_SYMBOL: "add_symbol",
                MC_J_REC_SET_LIMITS: "set_limits", MC_J_REC_SET_REF_PRICE: "set_reference_price",
                MC_J_REC_TRADE: "trade"}
DAMAGE = {MC_J_E_TRUNCATED: "truncated record", MC_J_E_LENGTH: "bad record length",
          MC_J_E_CRC: "CRC mismatch", MC_J_E_TYPE: "unknown record type",
          MC_J_E_SEQ: "sequence break", MC_J_E_SIZE: "bad record size for its type"}
LIMIT_NAMES = ("tick", "min_price", "max_price", "ref_price", "band", "max_qty", "max_notional")
SEGMENT_SUFFIX = {MC_J_KIND_COMMANDS: ".mcj", MC_J_KIND_TRADES: ".mct"}
SEGMENT_PREFIX = {MC_J_KIND_COMMANDS: "journal", MC_J_KIND_TRADES: "trades"}

# One row per valid record found by scan_segment.
RECORD_INDEX_DTYPE = np.dtype([("offset", "<i8"), ("length", "<u4"), ("type", "<u2"),
                               ("_pad", "<u2"), ("seq", "<u8"), ("ts_ns", "<i8")])

# The trade record as it lies in a segment, and the trade capture's user-facing array.
TRADE_RECORD_DTYPE = np.dtype([
    ("length", "<u4"), ("crc", "<u4"), ("type", "<u2"), ("reserved16", "<u2"),
    ("reserved32", "<u4"), ("seq", "<u8"), ("journal_ts_ns", "<i8"), ("cmd_seq", "<u8"),
    ("ts_ns", "<i8"), ("taker_id", "<u8"), ("maker_id", "<u8"), ("price", "<i8"), ("qty", "<i8"),
    ("taker_owner", "<u8"), ("maker_owner", "<u8"), ("symbol", "<u4"), ("taker_side", "u1"),
    ("last", "u1"), ("reserved", "<u2")])
TRADE_DTYPE = np.dtype([
    ("seq", "<u8"), ("cmd_seq", "<u8"), ("ts_ns", "<i8"), ("journal_ts_ns", "<i8"),
    ("symbol", "<u4"), ("taker_side", "u1"), ("last", "u1"), ("_pad", "<u2"),
    ("taker_id", "<u8"), ("maker_id", "<u8"), ("price", "<i8"), ("qty", "<i8"),
    ("taker_owner", "<u8"), ("maker_owner", "<u8")])


def _check_layouts():
    # The dtypes above and the C structs must agree byte for byte.
    cdef mc_rec_trade t
    cdef mc_rec_command c
    assert sizeof(mc_seg_header) == MC_J_SEG_HEADER
    assert sizeof(mc_rec_header) == MC_J_REC_HEADER
    assert sizeof(mc_rec_command) == 88
    assert sizeof(mc_rec_trade) == TRADE_RECORD_DTYPE.itemsize == 104
    assert <size_t>&t.cmd_seq - <size_t>&t == TRADE_RECORD_DTYPE.fields["cmd_seq"][1]
    assert <size_t>&t.symbol - <size_t>&t == TRADE_RECORD_DTYPE.fields["symbol"][1]
    assert <size_t>&t.last - <size_t>&t == TRADE_RECORD_DTYPE.fields["last"][1]
    assert <size_t>&c.result - <size_t>&c == 32 + COMMAND_DTYPE.itemsize
    assert sizeof(mc_rec_add_symbol) == 104 and sizeof(mc_rec_set_limits) == 96
    assert sizeof(mc_rec_ref_price) == 48
    return True

_check_layouts()


# ----------------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------------
# primitives
# ----------------------------------------------------------------------------------------------

cdef uint32_t mc_crc32(const uint8_t* p, int64_t n) noexcept nogil:
    return mc_crc32c(p, <size_t>n)


cdef int64_t mc_wall_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


def crc32c(data, uint32_t start=0):
    """CRC-32C (Castagnoli) of ``data``, as in every record's ``crc`` field.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    if start != 0:
        raise ValueError("only start=0 is supported")
    return mc_crc32c(&v[0] if v.shape[0] else NULL, v.shape[0])


def crc32c_implementation():
    """``"sse4.2"`` or ``"table"``: how CRC-32C is computed on this machine."""
    return "sse4.2" if mc_crc32c_impl() == 2 else "table"


def _crc32c_force_table(bint on):
    # tests: compute with the table even where the instruction exists
    mc_crc32c_force_table(on)


mc_crc32c_impl()     # choose the implementation now, before any thread exists


cdef inline void _seal(uint8_t* rec) noexcept nogil:
    # CRC over everything after the crc field, written last.
    cdef mc_rec_header* h = <mc_rec_header*>rec
    h.crc = mc_crc32(rec + 8, h.length - 8)


cdef int _write_all(mc_journal* j, int fd, const uint8_t* p, int64_t n) noexcept nogil:
    cdef ssize_t w
    while n > 0:
        w = c_write(fd, p, <size_t>n)
        if w < 0:
            if errno == EINTR:
                continue
            j.err = errno
            return -1
        p += w
        n -= w
    return 0


cdef int _fsync(mc_journal* j, int fd) noexcept nogil:
    if c_fdatasync(fd) < 0:
        j.err = errno
        return -1
    return 0


cdef int _open_segment(mc_journal* j, uint64_t first_seq) noexcept nogil:
    """Create the segment whose first record will be first_seq, write its header, and make its
    directory entry durable (unless the policy is never)."""
    cdef char path[4200]
    cdef char aside[4210]
    snprintf(path, sizeof(path), "%s/%s-%020llu%s", j.dir, j.prefix, first_seq,
             ".mcj" if j.kind == MC_J_KIND_COMMANDS else ".mct")
    cdef int fd
    if j.replace:
        # an empty segment of this name is there (recovery: its header records other
        # options): the new one is made aside and renamed over it, so that a crash leaves
        # one of the two whole
        snprintf(aside, sizeof(aside), "%s.new", path)
        fd = c_open(aside, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
    else:
        fd = c_open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
    if fd < 0:
        j.err = errno
        return -1
    cdef mc_seg_header hd
    memset(&hd, 0, sizeof(hd))
    memcpy(hd.magic, b"MCJOURNL", 8)
    hd.version = MC_J_VERSION
    hd.header_size = MC_J_SEG_HEADER
    hd.kind = j.kind
    hd.stp = j.stp
    hd.first_seq = first_seq
    hd.created_ns = mc_wall_ns()
    if j.has_base:
        # the state the journal starts from: only the writer's first segment knows it
        hd.flags = MC_J_SEG_BASE
        hd.base_hash = j.base_hash
    hd.flags |= MC_J_SEG_LIMIT
    hd.seg_limit = j.seg_limit
    if j.kind == MC_J_KIND_COMMANDS and j.policy != MC_J_ON_SYNC:
        # the user's policy (the trade capture's is derived from it: not recorded)
        hd.flags |= MC_J_SEG_POLICY | (<uint32_t>j.policy << MC_J_SEG_POLICY_SHIFT)
    if j.kind == MC_J_KIND_COMMANDS and j.trades >= 0:
        hd.flags |= MC_J_SEG_TRADES | (MC_J_SEG_TRADES_ON if j.trades else 0)
    hd.crc = mc_crc32(<uint8_t*>&hd, 60)
    if _write_all(j, fd, <uint8_t*>&hd, MC_J_SEG_HEADER) < 0:
        c_close(fd)
        if j.replace:
            c_unlink(aside)
        return -1
    # Reserve the segment's blocks now (beyond the file size, which still grows with each
    # write): appends then need no block allocation, and an fsync no allocation work that
    # would hold the inode's locks against the writer. Best effort: not every file system can.
    mc_prealloc(fd, j.seg_limit)
    if j.replace and ((j.policy != MC_J_NEVER and _fsync(j, fd) < 0)
                      or c_rename(aside, path) < 0):
        if j.err == 0:
            j.err = errno
        c_close(fd)
        c_unlink(aside)
        return -1
    j.replace = 0
    if j.policy != MC_J_NEVER and (_fsync(j, fd) < 0 or _fsync(j, j.dir_fd) < 0):
        c_close(fd)
        return -1
    if j.policy == MC_J_NEVER:
        j.dir_unsynced = 1      # its name: made durable by the next sync() (mc_journal_sync)
    _set_fd(j, fd)
    j.seg_size = MC_J_SEG_HEADER
    j.segments_created += 1
    j.has_base = 0
    return 0


cdef void _set_fd(mc_journal* j, int fd) noexcept nogil:
    # The syncer thread reads fd under fd_lock.
    if j.thread_on:
        pthread_mutex_lock(&j.fd_lock)
        j.fd = fd
        pthread_mutex_unlock(&j.fd_lock)
    else:
        j.fd = fd


cdef int _close_fd(mc_journal* j) noexcept nogil:
    cdef int fd = j.fd
    _set_fd(j, -1)
    if fd >= 0 and j.err == 0:
        c_ftruncate(fd, j.seg_size)     # gives back the preallocated blocks past the end
    if fd >= 0 and c_close(fd) < 0 and j.err == 0:
        j.err = errno
        return -1
    return 0


cdef void _kick(mc_journal* j) noexcept nogil:
    pthread_mutex_lock(&j.lock)
    j.kick = 1
    pthread_cond_signal(&j.cond)
    pthread_mutex_unlock(&j.lock)


cdef int _write_out(mc_journal* j) noexcept nogil:
    """Hand the buffered records to the OS (one write(2))."""
    if j.n == 0:
        return 0
    if _write_all(j, j.fd, j.buf, j.n) < 0:
        return -1
    j.seg_size += j.n
    j.unsynced += j.buffered_records
    j.buffered_records = 0
    j.n = 0
    mc_store_u64(&j.written_seq, j.next_seq - 1)
    if j.thread_on and j.unsynced >= j.batch_records:
        j.unsynced = 0
        _kick(j)
    return 0


cdef int _sync_now(mc_journal* j) noexcept nogil:
    # The writing thread's own fsync (policy always, sync(), roll, close).
    cdef uint64_t ws = j.written_seq
    if _fsync(j, j.fd) < 0:
        return -1
    j.fsyncs += 1   # a statistic: may race the syncer's count, never what is synced
    mc_max_u64(&j.durable_seq, ws)
    j.unsynced = 0
    return 0


cdef void* _syncer(void* arg) noexcept nogil:
    """Group commit: fdatasync whatever was written, every batch_ns or when kicked."""
    cdef mc_journal* j = <mc_journal*>arg
    cdef timespec deadline
    cdef uint64_t ws
    cdef int64_t t
    pthread_mutex_lock(&j.lock)
    while not j.stop:
        if not j.kick:
            clock_gettime(MC_SYNCER_CLOCK, &deadline)
            t = deadline.tv_nsec + j.batch_ns
            deadline.tv_sec += t // 1000000000
            deadline.tv_nsec = t % 1000000000
            pthread_cond_timedwait(&j.cond, &j.lock, &deadline)
        j.kick = 0
        if j.stop:
            break
        pthread_mutex_unlock(&j.lock)
        pthread_mutex_lock(&j.fd_lock)
        ws = mc_load_u64(&j.written_seq)
        if j.fd >= 0 and ws > mc_load_u64(&j.durable_seq):
            if c_fdatasync(j.fd) < 0:
                mc_store_int(&j.sync_err, errno)
            else:
                j.fsyncs += 1
                mc_max_u64(&j.durable_seq, ws)
        pthread_mutex_unlock(&j.fd_lock)
        pthread_mutex_lock(&j.lock)
    pthread_mutex_unlock(&j.lock)
    return NULL


cdef int _start_syncer(mc_journal* j) noexcept nogil:
    """0, or the error number of the pthread call that failed (they return it, errno is not
    set): EAGAIN for a thread limit reached."""
    cdef int rc = pthread_mutex_init(&j.lock, NULL)
    if rc == 0:
        rc = pthread_mutex_init(&j.fd_lock, NULL)
    if rc == 0:
        rc = mc_syncer_cond_init(&j.cond)
    if rc != 0:
        return rc
    j.thread_on = 1
    rc = pthread_create(&j.thread, NULL, _syncer, j)
    if rc != 0:
        j.thread_on = 0
    return rc


cdef void _stop_syncer(mc_journal* j) noexcept nogil:
    if not j.thread_on:
        return
    if j.owner_pid != c_getpid():
        # a forked child: the thread was not copied and its lock may be held forever
        j.thread_on = 0
        return
    pthread_mutex_lock(&j.lock)
    j.stop = 1
    pthread_cond_signal(&j.cond)
    pthread_mutex_unlock(&j.lock)
    pthread_join(j.thread, NULL)
    j.thread_on = 0
    # _dead() reads the syncer's error only while the thread runs: kept here, a failed
    # fdatasync of the thread's was lost to close(), whose own fsync then succeeded (Linux
    # reports a writeback error once per open file) with the records gone
    if j.err == 0:
        j.err = mc_load_int(&j.sync_err)
    pthread_cond_destroy(&j.cond)
    pthread_mutex_destroy(&j.lock)
    pthread_mutex_destroy(&j.fd_lock)


cdef inline int _dead(mc_journal* j) noexcept nogil:
    if j.err == 0 and j.thread_on:
        j.err = mc_load_int(&j.sync_err)
    return j.err != 0


cdef uint8_t* _reserve(mc_journal* j, int64_t size) noexcept nogil:
    """Room for one record of `size` bytes in the buffer, rolling to a new segment first when
    the record would take the current one past its size limit. NULL after an I/O failure."""
    if _dead(j):
        return NULL
    if j.seg_size + j.n + size > j.seg_limit and j.seg_size + j.n > MC_J_SEG_HEADER:
        if _write_out(j) < 0:
            return NULL
        if j.policy != MC_J_NEVER and _sync_now(j) < 0:
            return NULL
        if j.policy == MC_J_NEVER:
            # closed unsynced: sync() must still make its records durable (see mc_journal_sync)
            j.closed_unsynced = 1
        if _close_fd(j) < 0:
            return NULL
        if _open_segment(j, j.next_seq) < 0:
            return NULL
    elif j.n + size > j.cap:
        if _write_out(j) < 0:
            return NULL
    if j.now_ns == 0:
        # one clock reading per call, which mc_journal_commit ends: read again whenever the
        # buffer was empty, a call larger than the buffer (written out part way) gave its
        # records several times, as if they were several calls
        j.now_ns = mc_wall_ns()
    return j.buf + j.n


cdef int mc_journal_command(mc_journal* j, const mc_command* c, int64_t result) noexcept nogil:
    """Append one command record (its seq is the journal's next); -1 after an I/O failure."""
    cdef uint8_t* p = _reserve(j, sizeof(mc_rec_command))
    if p == NULL:
        return -1
    cdef mc_rec_command* r = <mc_rec_command*>p
    r.h.length = sizeof(mc_rec_command)
    r.h.type = MC_J_REC_COMMAND
    r.h.reserved16 = 0
    r.h.reserved32 = 0
    r.h.seq = j.next_seq
    r.h.ts_ns = j.now_ns
    r.cmd = c[0]
    r.result = result
    _seal(p)
    j.last_crc = r.h.crc
    j.n += sizeof(mc_rec_command)
    j.next_seq += 1
    j.buffered_records += 1
    return 0


cdef int mc_journal_fills(mc_journal* j, uint64_t cmd_seq, const mc_event* ev,
                          int64_t n, mc_journal* commands, int64_t ts_ns) noexcept nogil:
    """Append a trade record for every FILL among n events of one command. ``commands``: the
    command journal the fills' command was appended to (NULL when it is on file already).
    ``ts_ns``: the records' journal time (recovery: their command record's), < 0 for the
    journal's clock."""
    cdef int64_t i, last = -1
    cdef uint8_t* p
    cdef mc_rec_trade* t
    for i in range(n):
        if ev[i].kind == MC_EV_FILL:
            last = i
    if last < 0:
        return 0
    # A fill refers to its command, so the command records go to the OS first. These records
    # may have to be written before the call ends (a full buffer, a segment roll), and the
    # command journal's buffer is written only at the end of the call: killed in between, a
    # process() batch left fills on file whose commands the command journal lacked.
    cdef int64_t room = (last + 1) * <int64_t>sizeof(mc_rec_trade)
    if commands != NULL and commands.n > 0 and (
            j.n + room > j.cap or j.seg_size + j.n + room > j.seg_limit):
        if _write_out(commands) < 0:
            return -1
    for i in range(last + 1):
        if ev[i].kind != MC_EV_FILL:
            continue
        p = _reserve(j, sizeof(mc_rec_trade))
        if p == NULL:
            return -1
        t = <mc_rec_trade*>p
        t.h.length = sizeof(mc_rec_trade)
        t.h.type = MC_J_REC_TRADE
        t.h.reserved16 = 0
        t.h.reserved32 = 0
        t.h.seq = j.next_seq
        t.h.ts_ns = j.now_ns if ts_ns < 0 else ts_ns
        t.cmd_seq = cmd_seq
        t.event_ts_ns = ev[i].ts_ns
        t.taker_id = ev[i].order_id
        t.maker_id = ev[i].maker_id
        t.price = ev[i].price
        t.qty = ev[i].qty
        t.taker_owner = ev[i].owner
        t.maker_owner = ev[i].maker_owner
        t.symbol = ev[i].symbol
        t.taker_side = ev[i].side
        t.last = 1 if i == last else 0
        t.reserved = 0
        _seal(p)
        j.n += sizeof(mc_rec_trade)
        j.next_seq += 1
        j.buffered_records += 1
    return 0


cdef int mc_journal_commit(mc_journal* j) noexcept nogil:
    """End of a call: write the buffered records (every policy: a process crash loses nothing
    the call acknowledged), then fsync if the policy is always (batch: the syncer thread's
    job). -1 after an I/O failure."""
    j.now_ns = 0        # the next call reads the clock again (_reserve)
    if _dead(j):
        return -1
    if _write_out(j) < 0:
        return -1
    if j.policy == MC_J_ALWAYS and j.written_seq != j.durable_seq:
        return _sync_now(j)
    return 0


cdef int mc_journal_commit_call(mc_journal* jc, mc_journal* jt) noexcept nogil:
    """End of a journaled call: mc_journal_commit of the command journal, then of the trade
    journal (NULL: none). When the command journal has failed, its records of the call may not
    be on file, so the trade records still buffered (their fills) are dropped instead of
    written: a fill never reaches the file without its command. Recovery rewrites the fills of
    the commands that are on file. -1 after an I/O failure of either."""
    cdef int rc = mc_journal_commit(jc)
    if jt == NULL:
        return rc
    if jc.err != 0:
        jt.next_seq -= <uint64_t>jt.buffered_records
        jt.n = 0
        jt.buffered_records = 0
        jt.now_ns = 0
        return -1
    if mc_journal_commit(jt) < 0:
        return -1
    return rc


cdef int mc_journal_sync(mc_journal* j) noexcept nogil:
    """Write and fsync everything appended so far, whatever the policy."""
    if _dead(j):
        return -1
    if _write_out(j) < 0:
        return -1
    if j.closed_unsynced:
        # Segments closed under policy never were not fsynced, and their descriptors are gone:
        # without this, durable_seq would count their records as on stable storage. One
        # syncfs of the directory's file system reaches them (and the directory entries).
        if mc_syncfs(j.dir_fd) < 0:
            j.err = errno
            return -1
        j.fsyncs += 1
        j.closed_unsynced = 0
        j.dir_unsynced = 0      # (the file system's directories included)
    if j.dir_unsynced:
        # a segment made under policy never: fdatasync of the file does not make its name
        # durable on every file system, the directory's fsync does
        if _fsync(j, j.dir_fd) < 0:
            return -1
        j.dir_unsynced = 0
    if j.written_seq == mc_load_u64(&j.durable_seq):
        return 0
    return _sync_now(j)


# ----------------------------------------------------------------------------------------------
# Python face of the writer
# ----------------------------------------------------------------------------------------------

def _last_segment_name(path, kind):
    # The segment a recovered journal continues: the one with the highest first seq, by the
    # readers' own rule (journal.segment_files: digits only, compared as numbers). Sorting every
    # name with the prefix and suffix as text took "journal-old.mcj", which the readers ignore,
    # for the last segment, and recovery failed on int("old") after cutting the tails.
    prefix, suffix = SEGMENT_PREFIX[kind] + "-", SEGMENT_SUFFIX[kind]
    found = [(int(n[len(prefix):len(n) - len(suffix)]), n) for n in os.listdir(path)
             if n.startswith(prefix) and n.endswith(suffix)
             and n[len(prefix):len(n) - len(suffix)].isascii()
             and n[len(prefix):len(n) - len(suffix)].isdigit()]
    if not found:
        raise JournalError(f"no {SEGMENT_PREFIX[kind]} segment to continue in {path}")
    return max(found)[1]


def check_buffer_bytes(int64_t buffer_bytes, int writers=1):
    """Raise ``MemoryError`` naming ``buffer_bytes`` unless ``writers`` (1 or 2) writer buffers
    of that size can be allocated together now; they are freed at once. O(1).

    The writers allocate their buffers only after the directory and its LOCK file exist: an
    engine calls this first, so that a size no allocation can satisfy changes nothing on disk.

    >>> check_buffer_bytes(1 << 20, 2)
    """
    cdef void* bufs[2]
    cdef int i, got = 0
    if not 1 <= writers <= 2:
        raise ValueError(f"writers must be 1 or 2, got {writers}")
    if buffer_bytes < 0:
        raise ValueError(f"buffer_bytes must be >= 0, got {buffer_bytes}")
    while got < writers:
        bufs[got] = malloc(buffer_bytes)
        if bufs[got] == NULL:
            break
        got += 1
    for i in range(got):
        free(bufs[i])
    if got < writers:
        raise MemoryError(f"buffer_bytes={buffer_bytes}: out of memory for "
                          f"{writers} journal writer buffer(s) of that size")


# A writer's err when its process is a child forked from the one that made it (_forked):
# errno values are positive, and -1 marks a writer the child is merely freeing.
cdef enum:
    _E_FORKED = -2

# Every live writer, so that a forked child can disable its copies (_forked_all).
_LIVE = weakref.WeakSet()


def _forked_all():
    for w in list(_LIVE):
        (<JournalWriter>w)._forked()


os.register_at_fork(after_in_child=_forked_all)


cdef class JournalWriter:
    """Appends records to the segments of one journal (commands or trades) in a directory.

    Made by the Engine (``Engine(journal=DIR)``) and by recovery; not meant to be shared. In a
    child forked from its process it refuses every write (:class:`JournalError`) and gives up
    its copy of the directory's lock (the group-commit thread is not copied). ``fsync``:
    ``"never"``, ``"batch"`` (group commit: a syncer thread fsyncs every ``batch_us`` µs or
    every ``batch_records`` records written, whichever comes first), ``"always"``, or
    ``"on_sync"`` (only at :meth:`sync`, segment roll and close: the trade capture's policy, but
    under an engine's ``"never"`` its trade journal is ``"never"`` too, fsynced only at the
    engine's :meth:`~matchcore.Engine.sync` and :meth:`~matchcore.Engine.snapshot`).
    """

    def __cinit__(self, path, int kind, int stp, str fsync="batch", *,
                  int64_t segment_bytes=64 << 20, int64_t batch_records=4096,
                  int64_t batch_us=2000, int64_t buffer_bytes=1 << 20, uint64_t next_seq=1,
                  int64_t append_size=-1, int lock_fd=-1, int64_t last_crc=-1,
                  base_hash=None, trades=None, bint replace=False):
        self.lock_fd = -1
        self.host_busy = NULL
        self._start_seq = next_seq
        self._prior_crc = last_crc if 0 <= last_crc <= 0xFFFFFFFF else -1
        if fsync not in POLICIES and fsync != "on_sync":
            raise ValueError(f"fsync must be one of {sorted(POLICIES)}, got {fsync!r}")
        if kind not in SEGMENT_PREFIX:
            raise ValueError(f"unknown journal kind {kind}")
        if segment_bytes < MC_J_SEG_HEADER + MC_J_MAX_RECORD:
            raise ValueError(f"segment_bytes must be >= {MC_J_SEG_HEADER + MC_J_MAX_RECORD}")
        if batch_records < 1 or batch_us < 1 or batch_us > 10**9:
            raise ValueError("batch_records must be >= 1 and batch_us in [1, 10**9]")
        if buffer_bytes < MC_J_MAX_RECORD:
            raise ValueError(f"buffer_bytes must be >= {MC_J_MAX_RECORD}")
        check_dir_length(path)
        dir_b = os.fsencode(os.path.abspath(path))
        self.path = os.fsdecode(dir_b)
        cdef mc_journal* j = <mc_journal*>calloc(1, sizeof(mc_journal))
        if j == NULL:
            raise MemoryError()
        j.fd = -1
        j.dir_fd = -1
        j.buf = <uint8_t*>malloc(buffer_bytes)
        if j.buf == NULL:
            free(j)
            raise MemoryError(f"buffer_bytes={buffer_bytes}: out of memory for the journal "
                              f"writer's buffer")
        self._j = j
        j.cap = buffer_bytes
        j.kind = kind
        j.stp = stp
        j.policy = MC_J_ON_SYNC if fsync == "on_sync" else POLICIES[fsync]
        j.owner_pid = c_getpid()
        j.seg_limit = segment_bytes
        j.batch_records = batch_records
        j.batch_ns = batch_us * 1000
        j.next_seq = next_seq
        # the engine's trade capture, recorded in the headers of the command segments this
        # writer makes (recovery keeps it when not given another)
        j.trades = -1 if trades is None or kind != MC_J_KIND_COMMANDS else (1 if trades else 0)
        # (a new segment only: it takes the place of the empty one of its name)
        j.replace = 1 if replace and append_size < 0 else 0
        j.written_seq = next_seq - 1
        j.durable_seq = next_seq - 1
        if base_hash is not None and append_size < 0:
            # the state hash of the engine before next_seq, written into the header of the
            # segment this writer starts with (recovery checks a snapshot at next_seq - 1,
            # or the empty engine of a full replay, against it)
            j.base_hash = <uint64_t>base_hash
            j.has_base = 1
        memcpy(j.dir, <const char*>dir_b, len(dir_b))
        j.dir[len(dir_b)] = 0
        pre = SEGMENT_PREFIX[kind].encode()
        memcpy(j.prefix, <const char*>pre, len(pre))
        j.prefix[len(pre)] = 0
        if lock_fd >= 0:
            # its own descriptor of the locked file: the lock lasts while any copy is open.
            # Taken before any file is made, and named: without a descriptor left it failed
            # last, after the segment was made, with a bare "[Errno 24] Too many open files"
            try:
                self.lock_fd = os.dup(lock_fd)
            except OSError as exc:
                raise OSError(exc.errno, f"{exc.strerror}: the journal writer could not keep "
                                         f"a descriptor of the directory's lock",
                              os.path.join(self.path, "LOCK")) from exc
        j.dir_fd = c_open(j.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        if j.dir_fd < 0:
            raise OSError(errno, os.strerror(errno), self.path)
        cdef int rc
        if append_size < 0:
            with nogil:
                rc = _open_segment(j, next_seq)
            if rc < 0:
                # the segment that could not be made (a full disk), not only its directory
                raise OSError(j.err, f"{os.strerror(j.err)}: the journal segment could not be "
                                     f"created", os.path.join(
                                         self.path, f"{SEGMENT_PREFIX[kind]}-{next_seq:020d}"
                                                    f"{SEGMENT_SUFFIX[kind]}"))
        else:
            # continue the last segment of a recovered journal (already cut to `append_size`)
            seg = os.path.join(self.path, _last_segment_name(self.path, kind))
            j.fd = os.open(seg, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            j.seg_size = append_size
            mc_prealloc(j.fd, j.seg_limit)
        if j.policy == MC_J_BATCH:
            rc = _start_syncer(j)
            if rc != 0:
                # said bare ("cannot start the journal's group-commit thread"): no errno, no
                # directory, and not that the other policies need no thread
                raise OSError(rc, f"{os.strerror(rc)}: the journal's group-commit thread "
                                  f"(fsync=\"batch\") could not be started (fsync=\"always\" "
                                  f"and \"never\" need none)", self.path)
        _LIVE.add(self)

    cdef void _forked(self) noexcept:
        # Run in a child forked from the writer's process (see _forked_all): the journal is
        # the parent's. A write from the child interleaved its records with the parent's, and
        # its copy of the LOCK descriptor held the directory's lock past the parent's close()
        # for as long as the child lived (no recovery meanwhile).
        if self._j == NULL or self._j.owner_pid == c_getpid():
            return
        self._j.thread_on = 0                # the syncer thread was not copied
        if self._j.err == 0:
            self._j.err = _E_FORKED
        if self.lock_fd >= 0:
            c_close(self.lock_fd)            # the parent's copy keeps the lock
            self.lock_fd = -1

    def __dealloc__(self):
        if self._j != NULL:
            if self._j.owner_pid != c_getpid():
                # inherited through fork(): leave the parent's files and thread alone
                self._j.thread_on = 0
                self._j.err = -1
            with nogil:
                if self._j.fd >= 0 and self._j.err == 0:
                    mc_journal_commit(self._j)
                _stop_syncer(self._j)
                _close_fd(self._j)
            if self._j.dir_fd >= 0:
                c_close(self._j.dir_fd)
            if self.lock_fd >= 0:
                c_close(self.lock_fd)
                self.lock_fd = -1
            free(self._j.buf)
            free(self._j)
            self._j = NULL

    def __reduce__(self):
        from matchcore._nocopy import refuse_copy
        refuse_copy("matchcore.durability.JournalWriter",
                    "it is closed: a copy would be a writer of nothing" if self.closed else
                    "it holds an open segment file, the directory's LOCK and, under "
                    "fsync=\"batch\", a syncer thread; a second writer would corrupt the journal",
                    "Read the journal with matchcore.durability.read_journal(DIR), or rebuild "
                    "the engine with Engine.recover(DIR)")

    cdef int _check(self) except -1:
        # one flag test on the hot path; the message only when something is wrong
        if _dead(self._j):
            if self._j.err == _E_FORKED:
                raise JournalError(f"journal {self.path} belongs to process "
                                   f"{self._j.owner_pid}: a process forked from it cannot "
                                   f"write it (recover the journal in this process once the "
                                   f"other has closed it)")
            raise JournalError(self._failure("") + " (the engine refuses further commands; "
                               "recover from the journal on disk)", self._failed_at or None)
        if self._closed:
            raise JournalError(f"journal {self.path} is closed")
        return 0

    cdef str _failure(self, str when):
        # "journal DIR: I/O failure in the KIND journal (SEGMENT)WHEN: REASON", the segment
        # kept in _failed_at from the first time the failure is seen: after close() there is
        # no descriptor left, and _failed_segment took the closed writer for a failed roll
        # (naming a segment after the last record, which no file was ever called)
        if self._failed_at is None:
            self._failed_at = self._failed_segment() or ""
        what = "command" if self._j.kind == MC_J_KIND_COMMANDS else "trade"
        where = f" ({os.path.basename(self._failed_at)})" if self._failed_at else ""
        return (f"journal {self.path}: I/O failure in the {what} journal{where}{when}: "
                f"{os.strerror(self._j.err)}")

    def _failed_segment(self):
        # The segment an I/O failure hit: the one a failed roll was creating (its descriptor
        # is gone, and next_seq is its first seq), else the open one, the newest of its kind.
        # None where the directory cannot be listed.
        cdef mc_journal* j = self._j
        if j.fd < 0:
            return os.path.join(self.path, f"{SEGMENT_PREFIX[j.kind]}-{j.next_seq:020d}"
                                           f"{SEGMENT_SUFFIX[j.kind]}")
        try:
            return os.path.join(self.path, _last_segment_name(self.path, j.kind))
        except (JournalError, OSError):
            return None

    def check(self):
        """Raise :class:`JournalError` if the journal is closed or an I/O failure happened."""
        self._check()

    def _append_config(self, int rtype, uint32_t symbol, limits=(), uint32_t mask=0,
                       int64_t capacity=0, name=None, int64_t price=0):
        # Config records are rare (symbols, limits): built here, from Python, then sealed in C.
        self._check()
        cdef uint8_t rec[MC_J_MAX_RECORD]
        cdef int64_t size
        cdef int i
        cdef mc_rec_add_symbol* a
        cdef mc_rec_set_limits* s
        cdef mc_rec_ref_price* r
        cdef bytes nb = b""
        memset(rec, 0, MC_J_MAX_RECORD)
        if rtype == MC_J_REC_ADD_SYMBOL:
            if name is not None:
                nb = str(name).encode("utf-8")
                if len(nb) > MC_J_MAX_NAME:
                    raise ValueError(f"symbol name longer than {MC_J_MAX_NAME} bytes (UTF-8)")
            size = sizeof(mc_rec_add_symbol) + ((len(nb) + 7) & ~7)
            a = <mc_rec_add_symbol*>rec
            a.symbol = symbol
            a.name_len = 0xFFFFFFFF if name is None else len(nb)
            a.capacity = capacity
            for i in range(7):
                a.limits[i] = limits[i]
            if len(nb):
                memcpy(rec + sizeof(mc_rec_add_symbol), <const char*>nb, len(nb))
        elif rtype == MC_J_REC_SET_LIMITS:
            size = sizeof(mc_rec_set_limits)
            s = <mc_rec_set_limits*>rec
            s.symbol = symbol
            s.mask = mask
            for i in range(7):
                s.limits[i] = limits[i]
        elif rtype == MC_J_REC_SET_REF_PRICE:
            size = sizeof(mc_rec_ref_price)
            r = <mc_rec_ref_price*>rec
            r.symbol = symbol
            r.price = price
        else:
            raise ValueError(f"not a config record type: {rtype}")
        cdef mc_rec_header* h = <mc_rec_header*>rec
        h.length = <uint32_t>size
        h.type = <uint16_t>rtype
        cdef mc_journal* j = self._j
        cdef uint8_t* p
        with nogil:
            p = _reserve(j, size)
            if p != NULL:
                h.seq = j.next_seq
                h.ts_ns = mc_wall_ns()
                _seal(rec)
                j.last_crc = h.crc
                memcpy(p, rec, size)
                j.n += size
                j.next_seq += 1
                j.buffered_records += 1
                mc_journal_commit(j)
        self._check()

    cdef int _enter(self) except -1:
        # The writer of an Engine (eng.journal, eng.trade_journal) is written by that engine's
        # calls without the GIL: a call on it from another thread meanwhile wrote the same
        # buffer (records interleaved, a journal recovery refuses). Its public methods are
        # guarded as the engine's own calls are: 1 if the engine's busy byte was set here.
        cdef uint8_t* b = self.host_busy
        if b == NULL:
            return 0
        if b[0]:
            if b[0] == MC_BUSY_HELD and mc_held_by_me(b):
                return 0
            mc_raise_busy("Engine", b[0], b)
        b[0] = MC_BUSY_JOURNAL
        return 1

    cdef void _leave(self, int entered) noexcept:
        if entered and self.host_busy != NULL:
            self.host_busy[0] = 0

    def commit(self):
        """Write what was appended (and fsync as the policy says). The writer of an
        :class:`~matchcore.Engine` is refused (:class:`~matchcore.BusyError`) while another
        thread uses that engine, as its own calls are."""
        cdef int rc
        cdef int entered = self._enter()
        try:
            with nogil:
                rc = mc_journal_commit(self._j)
        finally:
            self._leave(entered)
        self._check()

    def sync(self):
        """Write and fsync everything appended so far; returns the last durable seq. (An
        engine's writer: refused while another thread uses the engine, see :meth:`commit`.)"""
        cdef int entered = self._enter()
        try:
            return self._sync()
        finally:
            self._leave(entered)

    cdef object _sync(self):
        # sync() for the engine, which guards its own calls
        cdef int rc
        self._check()
        with nogil:
            rc = mc_journal_sync(self._j)
        self._check()
        return mc_load_u64(&self._j.durable_seq)

    def close(self):
        """Write what is buffered, fsync (unless the policy is ``"never"``) and close. (An
        engine's writer: refused while another thread uses the engine, see :meth:`commit`.)"""
        cdef int entered = self._enter()
        try:
            self._close()
        finally:
            self._leave(entered)

    cdef object _close(self):
        # close() for the engine, which guards its own calls
        cdef int rc = 0
        self._closed = True     # whatever the writes below give: no segment stays open
        if self._j.err == _E_FORKED:
            # the parent's journal: close this process's copies, write nothing
            if self._j.fd >= 0:
                c_close(self._j.fd)
                self._j.fd = -1
            self._close_dir_and_lock()
            return
        if self._j.fd < 0:
            # a failed segment roll leaves no open segment, but the syncer thread and the
            # directory's lock must still go, or no later engine could take the directory over
            with nogil:
                _stop_syncer(self._j)
            self._close_dir_and_lock()
            return
        # the open segment, which a failure seen from here on hit (named after the close,
        # when the descriptor that tells it is gone)
        open_segment = self._failed_segment() if self._failed_at is None else None
        with nogil:
            _stop_syncer(self._j)
            if self._j.policy == MC_J_NEVER:
                rc = mc_journal_commit(self._j)
            else:
                rc = mc_journal_sync(self._j)
            if _close_fd(self._j) < 0:
                rc = -1
        self._close_dir_and_lock()
        if rc < 0:
            if self._failed_at is None:
                self._failed_at = open_segment or ""
            raise JournalError(self._failure(" on close"), self._failed_at or None)

    cdef void _close_dir_and_lock(self) noexcept:
        # A closed writer holds no descriptor: an engine kept after close() (a finished
        # session in a list) must not pin its directory's fd for as long as it lives.
        if self._j.dir_fd >= 0:
            c_close(self._j.dir_fd)
            self._j.dir_fd = -1
        if self.lock_fd >= 0:
            c_close(self.lock_fd)
            self.lock_fd = -1

    @property
    def last_crc(self):
        """CRC-32C of the last command or config record (seq ``next_seq - 1``), None if not
        known (no record yet, or a trade journal). A snapshot stores it, and recovery uses the
        snapshot only with a journal whose record at that seq has the same CRC."""
        if self._j.kind != MC_J_KIND_COMMANDS:
            return None
        if self._j.next_seq > self._start_seq:
            return self._j.last_crc
        return None if self._prior_crc < 0 else self._prior_crc

    @property
    def closed(self):
        """Whether :meth:`close` has run, or an I/O failure left no segment open. (Not while
        a segment roll of another thread's engine call is under way: its segment is closed
        before the next one opens.)"""
        return self._closed or (self._j.fd < 0 and _dead(self._j))

    @property
    def failed(self):
        """Whether an I/O failure (or a write from a forked process) ended the journal, which
        may then hold less than the engine did; a clean :meth:`close` is not one."""
        cdef mc_journal* j = self._j
        return _dead(j) != 0        # the C flag is an int: 0 and 1 read as no bool (`is True`)

    @property
    def os_errno(self):
        """The errno of the I/O failure that ended the journal (a write, fsync or segment
        roll), or None: none happened (a write refused in a forked child is not one)."""
        cdef mc_journal* j = self._j
        return j.err if _dead(j) and j.err > 0 else None

    @property
    def next_seq(self):
        """Seq the next record will get."""
        return self._j.next_seq

    @property
    def written_seq(self):
        """Last seq handed to the OS (survives a crash of this process)."""
        return mc_load_u64(&self._j.written_seq)

    @property
    def durable_seq(self):
        """Last seq known to be on stable storage (fsynced)."""
        return mc_load_u64(&self._j.durable_seq)

    @property
    def fsyncs(self):
        """fdatasync calls made on segments so far (the writer's and the syncer thread's),
        plus the syncfs a ``sync()`` makes after segments were closed under policy never."""
        return self._j.fsyncs

    @property
    def policy(self):
        """``"never"``, ``"batch"``, ``"always"`` or ``"on_sync"``."""
        if self._j.policy == MC_J_ON_SYNC:
            return "on_sync"
        return {v: k for k, v in POLICIES.items()}[self._j.policy]

    @property
    def segments_created(self):
        return self._j.segments_created

    @property
    def segment_bytes(self):
        """The size at which this writer starts a new segment (the ``segment_bytes`` option,
        or, for a recovered engine not given one, what the journal's segments record)."""
        return self._j.seg_limit


include "_journal_read.pxi"
