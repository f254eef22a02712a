/* A C program driving matchcore through its header: the market maker of
 * numba_market_maker.py, written in C, plus a command replay used by the tests.
 *
 * The function table comes from the PyCapsule "matchcore._capi._C_API": the program embeds
 * Python only to import it (mc_import_api() in matchcore.h), then releases the interpreter
 * lock and calls the book's C functions directly.
 *
 * Build (from the repository; see tests/test_examples.py, which does exactly this):
 *   cc -O2 -I"$(python -c 'import matchcore._capi as c; print(c.get_include())')" \
 *      $(python3-config --cflags --embed) examples/c_market_maker.c \
 *      $(python3-config --ldflags --embed) -o c_market_maker
 * Run with matchcore importable by the embedded interpreter, e.g.
 *   PYTHONPATH=src:/path/to/site-packages ./c_market_maker [steps] [seed]
 *   PYTHONPATH=... ./c_market_maker replay COMMANDS.bin EVENTS.bin
 *   PYTHONPATH=... ./c_market_maker safety
 * COMMANDS.bin is an array of mc_command (numpy COMMAND_DTYPE .tobytes()) or a native command
 * file (`.mccmd`, matchcore.native.write_commands; its stored STP mode is used), its records of
 * one symbol (one book: records of several are refused, as by replay_commands); the replay applies
 * each command through the per-call functions, writes every event to EVENTS.bin (mc_event
 * records), checks that process() on a fresh book and a snapshot round trip give the same
 * result, and prints the state hash. `safety` shows the handle checks: calls with the handle of
 * a freed book, of a Python book or engine that has been garbage-collected, a book handle given
 * as an engine, and made-up values are all refused with -MC_ERR_HANDLE, and a side other than
 * MC_BUY / MC_SELL with -MC_R_INVALID_SIDE (one line per check).
 *
 * Built with -DMC_MM_LIBRARY -shared -fPIC it is a library exporting mm_run() and
 * mm_apply_calls() (no Python): the benchmark loads it with ctypes and passes the table address.
 */
#ifndef MC_MM_LIBRARY
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "matchcore.h"

#define AGENT 7
#define FLOW 1
#define AGENT_ID0 (1ULL << 40)
#define N_STATS 8

/* splitmix64 -> 63 non-negative bits (the same generator as the Numba and Python versions) */
static inline int64_t rng(uint64_t* s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (int64_t)(z >> 1);
}

/* The session of numba_market_maker.run_session, statement for statement. */
int64_t mm_run(const mc_api_v2* api, mc_book_h book, int64_t n_steps, uint64_t seed,
               int64_t half_spread, int64_t quote_qty, int64_t max_pos, int64_t* stats) {
    mc_event ev[256];
    const int64_t cap = 256;
    uint64_t state = seed;
    int64_t fair = 100, next_flow = 1, bid_px = 0, ask_px = 0, pos = 0, cash = 0;
    int64_t fills = 0, fill_qty = 0, agent_orders = 0, calls = 0, mid2 = 2 * fair;
    uint64_t next_agent = AGENT_ID0, bid_id = 0, ask_id = 0;
    int side_s;
    int64_t p, q;
    for (int64_t t = 0; t < n_steps; t++) {
        api->set_time(book, t * 1000);
        int64_t r = rng(&state);
        int64_t r2 = rng(&state);
        int64_t u = r % 100;
        int side = (int)((r >> 8) & 1);
        if (u < 70) {
            int64_t off = (r >> 16) % 8 - 1;
            api->submit(book, (uint64_t)next_flow, side, side == 0 ? fair - off : fair + off,
                        1 + (r >> 24) % 10, MC_GTC, FLOW, 0);
            next_flow++;
        } else if (u < 80) {
            api->market(book, (uint64_t)next_flow, side, 1 + (r >> 24) % 8, FLOW);
            next_flow++;
        } else if (next_flow > 1) {
            int64_t window = next_flow - 1 < 64 ? next_flow - 1 : 64;
            api->cancel(book, (uint64_t)(next_flow - 1 - (r >> 16) % window));
        }
        calls++;
        if ((r2 >> 8) % 8 == 0) {
            fair += 2 * (r2 % 2) - 1;
        }
        if (fair < 20)
            fair = 20;
        for (;;) {
            int64_t n = api->drain_events_owner(book, AGENT, ev, cap);
            calls++;
            for (int64_t i = 0; i < n; i++) {
                if (ev[i].kind == MC_EV_FILL) {
                    int64_t fq = ev[i].qty;
                    int s = ev[i].maker_owner == AGENT ? 1 - ev[i].side : ev[i].side;
                    if (s == 0) {
                        pos += fq;
                        cash -= fq * ev[i].price;
                    } else {
                        pos -= fq;
                        cash += fq * ev[i].price;
                    }
                    fills++;
                    fill_qty += fq;
                }
            }
            if (n < cap)
                break;
        }
        if (bid_id != 0) {
            calls++;
            if (!api->get(book, bid_id, &side_s, &p, &q))
                bid_id = 0;
        }
        if (ask_id != 0) {
            calls++;
            if (!api->get(book, ask_id, &side_s, &p, &q))
                ask_id = 0;
        }
        int64_t bp, bq, ap, aq;
        int okb = api->best(book, MC_BUY, &bp, &bq);
        int oka = api->best(book, MC_SELL, &ap, &aq);
        calls += 2;
        mid2 = (okb && oka) ? bp + ap : 2 * fair;
        int64_t mid = mid2 / 2;  /* mid2 > 0: same as floor division */
        int64_t skew = pos / 10; /* truncates toward zero, as the other versions do */
        int64_t tb = mid - half_spread - skew, ta = mid + half_spread - skew;
        if (tb < 1)
            tb = 1;
        if (bid_id != 0 && (bid_px != tb || pos >= max_pos)) {
            api->cancel(book, bid_id);
            calls++;
            bid_id = 0;
        }
        if (bid_id == 0 && pos < max_pos) {
            api->submit(book, next_agent, MC_BUY, tb, quote_qty, MC_GTC, AGENT, 1);
            agent_orders++;
            calls += 2;
            if (api->get(book, next_agent, &side_s, &p, &q)) {
                bid_id = next_agent;
                bid_px = tb;
            }
            next_agent++;
        }
        if (ask_id != 0 && (ask_px != ta || pos <= -max_pos)) {
            api->cancel(book, ask_id);
            calls++;
            ask_id = 0;
        }
        if (ask_id == 0 && pos > -max_pos) {
            api->submit(book, next_agent, MC_SELL, ta, quote_qty, MC_GTC, AGENT, 1);
            agent_orders++;
            calls += 2;
            if (api->get(book, next_agent, &side_s, &p, &q)) {
                ask_id = next_agent;
                ask_px = ta;
            }
            next_agent++;
        }
    }
    stats[0] = next_flow - 1;
    stats[1] = agent_orders;
    stats[2] = fills;
    stats[3] = fill_qty;
    stats[4] = pos;
    stats[5] = cash;
    stats[6] = mid2;
    stats[7] = calls;
    return calls;
}

/* One command through the per-call function of its kind (the clock set first). */
static inline int64_t apply_one(const mc_api_v2* api, mc_book_h b, const mc_command* c) {
    api->set_time(b, c->ts_ns);
    switch (c->kind) {
    case MC_CMD_SUBMIT:
        return api->submit(b, c->order_id, c->side, c->price, c->qty, c->tif, c->owner,
                           c->post_only);
    case MC_CMD_MARKET:
        return api->market(b, c->order_id, c->side, c->qty, c->owner);
    /* a command that names its sender: its owner goes into the REJECTED event of an id that
       is not resting, as process() runs it */
    case MC_CMD_CANCEL:
        return api->cancel_by(b, c->order_id, c->owner);
    case MC_CMD_MODIFY:
        return api->modify_by(b, c->order_id, c->qty, c->price, c->owner);
    default:
        return api->apply(b, c);
    }
}

/* Per-call loop over a command array, events discarded after each call (the benchmark's C
 * per-operation figure). Returns n. */
int64_t mm_apply_calls(const mc_api_v2* api, mc_book_h b, const mc_command* cmds, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        apply_one(api, b, &cmds[i]);
        api->clear_events(b);
    }
    return n;
}

#ifndef MC_MM_LIBRARY

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run_market_maker(const mc_api_v2* api, int64_t steps, uint64_t seed) {
    int64_t st[N_STATS];
    mc_book_h book = api->book_new(MC_STP_CANCEL_RESTING, 1024);
    if (book == 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    double t0 = now_s();
    mm_run(api, book, steps, seed, 2, 5, 50, st);
    double dt = now_s() - t0;
    printf("c market maker: %lld step%s, seed %llu\n", (long long)steps, steps == 1 ? "" : "s",
           (unsigned long long)seed);
    printf("  flow orders %lld, agent orders %lld, fills %lld (%lld lots)\n", (long long)st[0],
           (long long)st[1], (long long)st[2], (long long)st[3]);
    printf("  position %lld, cash %lld, mark-to-mid PnL %.1f ticks*lots\n", (long long)st[4],
           (long long)st[5], (2.0 * st[5] + (double)st[4] * st[6]) / 2);
    printf("  book: %lld resting orders, state hash %#018llx\n", (long long)api->count(book),
           (unsigned long long)api->state_hash(book));
    /* no time per call for a run that made none (--steps 0) */
    if (st[7] > 0)
        printf("  %lld book calls in %.1f ms (%.0f ns per call)\n", (long long)st[7], dt * 1e3,
               dt * 1e9 / st[7]);
    else
        printf("  0 book calls in %.1f ms\n", dt * 1e3);
    api->book_free(book);
    return 0;
}

/* The bytes of a regular file, or NULL with *why set. Its size is stat()'s: taken with fseek /
 * ftell, a pipe (/dev/stdin, a shell's <(...)) gave -1 and a directory LONG_MAX, and every
 * path that could not be read, a missing one too, was said to be "cannot be read". Checked
 * before it is opened, so that a FIFO without a writer does not hang the open. */
static void* read_file(const char* path, long* size, const char** why) {
    struct stat st;
    if (stat(path, &st) != 0) {
        *why = strerror(errno);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        *why = "is a directory, not a command file";
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file (a pipe, FIFO or device): write the commands to a file first";
        return NULL;
    }
    FILE* f = fopen(path, "rb");
    if (f == NULL) {
        *why = strerror(errno);
        return NULL;
    }
    *size = (long)st.st_size;
    void* buf = malloc(*size > 0 ? *size : 1);
    if (buf == NULL)
        *why = "out of memory";
    else if (fread(buf, 1, *size, f) != (size_t)*size) {
        *why = ferror(f) ? strerror(errno) : "the file got shorter while it was read";
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* Drain every pending event of a book into a growing array. */
static mc_event* drain_all(const mc_api_v2* api, mc_book_h b, mc_event* all, int64_t* n,
                           int64_t* cap) {
    int64_t pending = api->pending_events(b);
    if (*n + pending > *cap) {
        while (*n + pending > *cap)
            *cap = *cap * 2 + 64;
        all = (mc_event*)realloc(all, *cap * sizeof(mc_event));
        if (all == NULL)
            return NULL;
    }
    *n += api->drain_events(b, all + *n, pending);
    return all;
}

/* The records of a native command file (matchcore.native, `.mccmd`: a 32-byte header, then
 * `count` records, all little-endian): checked as matchcore.native.read_commands checks them.
 * Returns the offset of the records and sets *n and *stp (the stored STP mode, else
 * MC_STP_CANCEL_RESTING), or -1 with *why set. */
static long native_records(const unsigned char* raw, long size, int64_t* n, int* stp,
                           const char** why) {
    uint16_t version, record_size, header_size;
    uint32_t flags;
    uint64_t count;
    if (size < 32) {
        *why = "a native command file with a truncated header";
        return -1;
    }
    memcpy(&version, raw + 6, 2);
    memcpy(&record_size, raw + 8, 2);
    memcpy(&header_size, raw + 10, 2);
    memcpy(&flags, raw + 12, 4);
    memcpy(&count, raw + 16, 8);
    if (version != 1 || record_size != sizeof(mc_command) || header_size != 32 || (flags & ~1u)) {
        *why = "a native command file of another version or layout";
        return -1;
    }
    if ((flags & 1u) && (raw[5] & 1u)) {
        *why = "a Recorder journal begun on a book holding orders (replay it from that state: "
               "matchcore.native.replay_commands(path, book))";
        return -1;
    }
    if (count > (uint64_t)(size - 32) / sizeof(mc_command)
            || 32 + count * sizeof(mc_command) != (uint64_t)size) {
        *why = "a native command file whose size is not its header's count of records "
               "(matchcore.native.read_header says why)";
        return -1;
    }
    if (raw[24] > MC_STP_CANCEL_BOTH && raw[24] != 0xFF) {
        *why = "a native command file with an unknown STP mode";
        return -1;
    }
    *n = (int64_t)count;
    *stp = raw[24] == 0xFF ? MC_STP_CANCEL_RESTING : raw[24];     /* 0xFF: none stored */
    return 32;
}

static int replay(const mc_api_v2* api, const char* cmd_path, const char* ev_path) {
    long size = 0, offset = 0;
    int64_t n = 0;
    int stp = MC_STP_CANCEL_RESTING;
    const char* why = NULL;
    /* raw mc_command records, or a native command file (what write_commands, a Recorder and
       `matchcore bench --save-workloads` write), told apart by the file's magic; the file
       itself was read as records, and refused as "cannot read" whatever it held */
    unsigned char* raw = (unsigned char*)read_file(cmd_path, &size, &why);  /* NULL: why set */
    if (raw != NULL) {
        if (size >= 5 && memcmp(raw, "MCCMD", 5) == 0)
            offset = native_records(raw, size, &n, &stp, &why);
        else if (size % sizeof(mc_command) != 0)
            why = "neither a native command file nor whole mc_command records";
        else
            n = size / (long)sizeof(mc_command);
    }
    mc_command* cmds = why == NULL ? (mc_command*)(raw + offset) : NULL;
    /* One book holds one symbol: replayed into it, one symbol's orders traded with another's
       and the replay still said exact. Refused, as matchcore.native.replay_commands refuses
       such a file, before any record. */
    char several[256];
    for (int64_t i = 1; why == NULL && i < n; i++) {
        if (cmds[i].symbol != cmds[0].symbol) {
            snprintf(several, sizeof several,
                     "records of symbols %u and %u (record %lld): the replay runs one book, "
                     "which holds one symbol; replay each symbol's records on their own",
                     (unsigned)cmds[0].symbol, (unsigned)cmds[i].symbol, (long long)i + 1);
            why = several;
        }
    }
    if (why != NULL) {
        fprintf(stderr, "cannot read commands from %s: %s\n", cmd_path, why);
        free(raw);
        return 2;
    }
    mc_book_h b = api->book_new(stp, 1024);
    int64_t n_ev = 0, ev_cap = 1024;
    mc_event* all = (mc_event*)malloc(ev_cap * sizeof(mc_event));
    /* per-call entry: one function per command kind, the clock set before each */
    for (int64_t i = 0; i < n && all != NULL; i++) {
        apply_one(api, b, &cmds[i]);
        all = drain_all(api, b, all, &n_ev, &ev_cap);
    }
    if (all == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    /* batch entry on a fresh book: the same events and the same final state */
    mc_book_h b2 = api->book_new(stp, 1024);
    api->process(b2, cmds, n);
    int64_t n2 = api->pending_events(b2);
    mc_event* batch = (mc_event*)malloc((n2 > 0 ? n2 : 1) * sizeof(mc_event));
    api->drain_events(b2, batch, n2);
    int same = n2 == n_ev && memcmp(batch, all, n_ev * sizeof(mc_event)) == 0
               && api->state_hash(b2) == api->state_hash(b);
    /* snapshot round trip in C */
    int64_t snap_size = api->snapshot_size(b);
    uint8_t* snap = (uint8_t*)malloc(snap_size);
    api->snapshot_write(b, snap, snap_size);
    mc_book_h b3 = api->book_new(MC_STP_NONE, 64);
    int rc = api->snapshot_restore(b3, snap, snap_size);
    int rc_bad = api->snapshot_restore(b3, snap, snap_size - 1); /* truncated: refused */

    /* fclose()'s result too: events that fitted in stdio's buffer are written there, and a
       file the system could not take (a full disk) lost them with exit status 0 */
    FILE* f = fopen(ev_path, "wb");
    int wrote = f != NULL && fwrite(all, sizeof(mc_event), n_ev, f) == (size_t)n_ev;
    int err = errno;
    if (f != NULL && fclose(f) != 0 && wrote) {
        wrote = 0;
        err = errno;
    }
    if (!wrote) {
        fprintf(stderr, "cannot write events to %s: %s\n", ev_path, strerror(err));
        return 2;
    }
    printf("commands %lld\n", (long long)n);
    printf("events %lld\n", (long long)n_ev);
    printf("resting %lld\n", (long long)api->count(b));
    printf("state_hash %#llx\n", (unsigned long long)api->state_hash(b));
    int snap_same = rc == 0 && rc_bad == -MC_SNAP_E_TRUNCATED
                    && api->state_hash(b3) == api->state_hash(b);
    printf("process_matches %s\n", same ? "yes" : "no");
    printf("snapshot_restore %s\n", snap_same ? "exact" : "MISMATCH");
    api->book_free(b);
    api->book_free(b2);
    api->book_free(b3);
    free(all);
    free(batch);
    free(snap);
    free(raw);
    return same && snap_same ? 0 : 3;
}

/* ---- handle checks, seen from C ---- */

static int n_checks = 0, n_failed = 0;

static void check(const char* what, int ok) {
    n_checks++;
    n_failed += !ok;
    printf("check %s %s\n", what, ok ? "ok" : "FAILED");
}

static uint64_t py_handle(PyObject* obj) {
    PyObject* h = obj != NULL ? PyObject_GetAttrString(obj, "handle") : NULL;
    uint64_t v = h != NULL ? PyLong_AsUnsignedLongLong(h) : 0;
    Py_XDECREF(h);
    return v;
}

/* Every call below on a dead or wrong handle must return -MC_ERR_HANDLE (state_hash 0,
 * engine_book 0) and leave the process intact; needs the GIL (it makes Python objects). */
static int safety(const mc_api_v2* api) {
    const int64_t E = -MC_ERR_HANDLE;
    mc_event ev[8];
    int64_t p, q;
    int side;
    uint32_t sym;

    /* a book the C caller made and freed */
    mc_book_h b = api->book_new(MC_STP_CANCEL_RESTING, 64);
    api->submit(b, 1, MC_SELL, 100, 5, MC_GTC, 0, 0);
    check("live_book_submit", api->submit(b, 2, MC_BUY, 100, 2, MC_GTC, 0, 0) == 2);
    check("book_free", api->book_free(b) == 0);
    check("freed_book_submit", api->submit(b, 3, MC_BUY, 100, 1, MC_GTC, 0, 0) == E);
    check("freed_book_cancel", api->cancel(b, 1) == E);
    check("freed_book_set_time", api->set_time(b, 5) == E);
    check("freed_book_best", api->best(b, MC_SELL, &p, &q) == E);
    check("freed_book_get", api->get(b, 1, &side, &p, &q) == E);
    check("freed_book_count", api->count(b) == E);
    check("freed_book_drain", api->drain_events(b, ev, 8) == E);
    check("freed_book_state_hash", api->state_hash(b) == 0);
    check("freed_book_copy", api->book_copy(b) == 0);
    check("freed_book_free_again", api->book_free(b) == E);
    check("freed_book_valid", api->book_valid(b) == 0);
    /* the slot is reused by the next book, under a new generation */
    mc_book_h b2 = api->book_new(MC_STP_CANCEL_RESTING, 64);
    check("new_book_new_handle", b2 != 0 && b2 != b && api->count(b2) == 0);
    check("old_handle_still_refused", api->submit(b, 4, MC_BUY, 100, 1, MC_GTC, 0, 0) == E
                                          && api->count(b2) == 0);
    /* a side other than MC_BUY / MC_SELL indexes no ladder: refused before any read */
    api->submit(b2, 5, MC_SELL, 101, 2, MC_GTC, 0, 0);
    int64_t rows[12];
    int bad_side_refused = 1;
    const int bad_sides[] = {2, -1, 255, 2147483647, -2147483647 - 1};
    for (size_t i = 0; i < sizeof(bad_sides) / sizeof(bad_sides[0]); i++) {
        int s = bad_sides[i];
        bad_side_refused &= api->best(b2, s, &p, &q) == -MC_R_INVALID_SIDE;
        bad_side_refused &= api->depth(b2, s, 4, rows) == -MC_R_INVALID_SIDE;
        bad_side_refused &= api->depth_orders(b2, s, 4, rows) == -MC_R_INVALID_SIDE;
        bad_side_refused &= api->level_count(b2, s) == -MC_R_INVALID_SIDE;
    }
    check("bad_side_refused", bad_side_refused && api->level_count(b2, MC_SELL) == 1);
    api->book_free(b2);

    /* made-up values: 0, small ints, a real pointer, a neighbour slot, a wrong generation */
    uint64_t garbage[] = {0, 1, 42, 0xDEADBEEFCAFEULL, (uint64_t)(uintptr_t)&garbage[0],
                          (uint64_t)(uintptr_t)api, b + 1, b ^ (1ULL << 34), ~0ULL};
    int refused = 1;
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        refused &= api->submit(garbage[i], 9, MC_BUY, 100, 1, MC_GTC, 0, 0) == E;
        refused &= api->engine_cancel(garbage[i], 0, 9) == E;
        refused &= api->book_free(garbage[i]) == E;
        refused &= api->state_hash(garbage[i]) == 0 && api->engine_book(garbage[i], 0) == 0;
    }
    check("garbage_handles", refused);

    PyObject* mc = PyImport_ImportModule("matchcore");
    if (mc == NULL) {
        PyErr_Print();
        return 2;
    }
    /* a Python-owned book: usable, not freeable from C, refused once collected */
    PyObject* ob = PyObject_CallMethod(mc, "OrderBook", NULL);
    mc_book_h pb = py_handle(ob);
    check("python_book_submit", api->submit(pb, 1, MC_BUY, 100, 1, MC_GTC, 0, 0) == 0
                                    && api->count(pb) == 1);
    check("python_book_free_refused", api->book_free(pb) == E && api->count(pb) == 1);
    Py_XDECREF(ob);
    check("collected_python_book_submit", api->submit(pb, 2, MC_BUY, 100, 1, MC_GTC, 0, 0) == E);

    /* an engine and its book, after the engine is gone */
    PyObject* eng = PyObject_CallMethod(mc, "Engine", NULL);
    PyObject* book = eng != NULL ? PyObject_CallMethod(eng, "add_symbol", "i", 1) : NULL;
    Py_XDECREF(book);
    mc_engine_h e = py_handle(eng);
    mc_book_h eb = api->engine_book(e, 1);
    check("engine_submit", api->engine_submit(e, 1, 7, MC_BUY, 100, 3, MC_GTC, 0, 0) == 0
                               && api->count(eb) == 1);
    check("book_handle_as_engine", api->engine_count(eb) == E);
    check("engine_handle_as_book", api->count(e) == E && api->book_free(e) == E);
    check("engine_book_free_refused", api->book_free(eb) == E);
    Py_XDECREF(eng);
    check("freed_engine_submit",
          api->engine_submit(e, 1, 8, MC_BUY, 100, 3, MC_GTC, 0, 0) == E);
    check("freed_engine_get", api->engine_get(e, 7, &sym, &side, &p, &q) == E);
    check("freed_engine_book", api->engine_book(e, 1) == 0 && api->engine_valid(e) == 0);
    check("freed_engine_book_handle", api->submit(eb, 9, MC_SELL, 100, 1, MC_GTC, 0, 0) == E
                                          && api->count(eb) == E);
    Py_DECREF(mc);
    if (PyErr_Occurred()) {
        PyErr_Print();
        n_failed++;
    }
    printf("safety checks %d failed %d\n", n_checks, n_failed);
    return n_failed == 0 ? 0 : 1;
}

/* A whole decimal argument, or 0: atoll() read "saftey" (a misspelt mode) as 0 steps and the
 * program ran nothing and reported success, and "2000O" as 2000. A seed is taken modulo 2**64
 * from a negative value, as the Python and Numba versions take it. */
static int parse_i64(const char* s, int64_t* out) {
    char* end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return 0;
    *out = (int64_t)v;
    return 1;
}

static int parse_u64(const char* s, uint64_t* out) {
    char* end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

static int usage(const char* prog) {
    fprintf(stderr, "usage: %s [STEPS [SEED]]\n"
                    "       %s replay COMMANDS.bin EVENTS.bin\n"
                    "       %s safety\n", prog, prog, prog);
    return 2;
}

int main(int argc, char** argv) {
    int64_t steps = 20000;
    uint64_t seed = 42;
    int mode_arg = argc >= 2 && (strcmp(argv[1], "safety") == 0 || strcmp(argv[1], "replay") == 0);
    if (!mode_arg && (argc > 3 || (argc >= 2 && (!parse_i64(argv[1], &steps) || steps < 0))
                      || (argc >= 3 && !parse_u64(argv[2], &seed)))) {
        fprintf(stderr, "%s: STEPS is an integer in [0, 2**63), SEED an integer\n", argv[0]);
        return usage(argv[0]);
    }
    if (mode_arg && strcmp(argv[1], "safety") == 0 && argc != 2)
        return usage(argv[0]);
    Py_Initialize();
    const mc_api_v2* api = mc_import_api();
    if (api == NULL) {
        PyErr_Print();
        fprintf(stderr, "could not import the matchcore C API (is matchcore on PYTHONPATH?)\n");
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "safety") == 0) {
        int rc = safety(api);
        Py_Finalize();
        return rc;
    }
    /* From here on no Python is needed: release the interpreter lock while the book runs. */
    PyThreadState* ts = PyEval_SaveThread();
    int rc;
    if (argc >= 2 && strcmp(argv[1], "replay") == 0) {
        if (argc != 4) {
            fprintf(stderr, "usage: %s replay COMMANDS.bin EVENTS.bin\n", argv[0]);
            rc = 2;
        } else {
            rc = replay(api, argv[2], argv[3]);
        }
    } else {
        rc = run_market_maker(api, steps, seed);
    }
    PyEval_RestoreThread(ts);
    Py_Finalize();
    return rc;
}
#endif
