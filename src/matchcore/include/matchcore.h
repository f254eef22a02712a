/* matchcore C API: the compiled order book and multi-symbol engine, called from C, C++, Cython
 * or any language with a C FFI, without the Python interpreter in between.
 *
 * The functions are the ones the Python methods call (one implementation); they are reached
 * through a table of function pointers, `mc_api_v2`, that the extension module publishes as the
 * PyCapsule "matchcore._capi._C_API" (and, as plain addresses, through
 * matchcore.c_api_addresses()). Get it once, then call freely: no function in the table needs
 * the GIL or touches Python objects.
 *
 *   #include <Python.h>          // before matchcore.h: enables mc_import_api()
 *   #include "matchcore.h"       // directory: matchcore.get_include()
 *   const mc_api_v2* api = mc_import_api();        // with the GIL held, NULL + exception on error
 *   mc_book_h b = api->book_new(MC_STP_CANCEL_RESTING, 1024);     // 0 when out of memory
 *   api->set_time(b, 1000);
 *   api->submit(b, 1, MC_SELL, 101, 5, MC_GTC, 0, 0);
 *   int64_t done = api->submit(b, 2, MC_BUY, 101, 3, MC_GTC, 0, 0);   // 3
 *   mc_event ev[16]; int64_t n = api->drain_events(b, ev, 16);
 *   api->book_free(b);
 *   api->submit(b, 3, MC_BUY, 101, 1, MC_GTC, 0, 0);             // -MC_ERR_HANDLE: refused
 *
 * Handles: books and engines are named by checked handles (mc_book_h / mc_engine_h, 64-bit
 * values), not pointers. A handle is a slot and a generation in a process-wide registry; every
 * call validates it (a bounds check and one compare, no access to the object) before the object
 * is used, and freeing an object moves its slot to a new generation. A call with the handle of a
 * freed book or engine, a book handle where an engine is expected (or the reverse), 0, or any
 * other value that was never issued returns -MC_ERR_HANDLE (state_hash: 0; book_new, book_copy,
 * engine_book: 0) and touches no memory but the registry's. Handles are never reissued.
 *
 * Conventions: prices are positive integer ticks, quantities integer lots, order ids uint64,
 * timestamps int64 ns. Order entry returns the qty executed (>= 0) or -reason (a MC_R_* code;
 * -MC_ERR_NOMEM when memory ran out, the book then unchanged). Every operation appends its
 * events to the book's pending buffer (see drain_events), unless the book records no events
 * (made in Python with record_events=False: nothing is written, whoever calls); set the event
 * timestamp with set_time (process() takes it from each command's ts_ns).
 *
 * Ownership: a book from book_new/book_copy belongs to the caller (free it with book_free).
 * A book or engine handed over from Python (OrderBook.handle, Engine.handle) belongs to that
 * Python object: the handle works exactly as long as the object is alive, and book_free refuses
 * it. The books of an engine (engine_book) belong to the Python Engine's OrderBook objects.
 * A book or engine must not be used from two threads at once (different ones may): a call made
 * while a Python call that released the GIL runs on it returns -MC_ERR_BUSY (state_hash: 0;
 * book_copy, engine_book: 0) and touches nothing, but calls from two C threads are not checked.
 * Raw pointers (OrderBook.raw_address) are borrowed pointers that own nothing: no function here
 * accepts one.
 *
 * Compatibility: fields are only ever appended to mc_api_v2; check `version` and `size`
 * (mc_import_api does). The structs below have the exact layout of matchcore.EVENT_DTYPE and
 * matchcore.COMMAND_DTYPE, so numpy arrays of those dtypes can be passed as mc_event* /
 * mc_command*.
 */
#ifndef MATCHCORE_H
#define MATCHCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_API_VERSION 2   /* 2: checked handles instead of pointers */
#define MC_CAPSULE_NAME "matchcore._capi._C_API"

enum { MC_BUY = 0, MC_SELL = 1 };
enum { MC_GTC = 0, MC_IOC = 1, MC_FOK = 2 };
enum { MC_STP_NONE = 0, MC_STP_CANCEL_RESTING = 1, MC_STP_CANCEL_TAKER = 2, MC_STP_CANCEL_BOTH = 3 };
enum {
    MC_EV_ACCEPTED = 0, MC_EV_FILL = 1, MC_EV_CANCELLED = 2, MC_EV_EXPIRED = 3,
    MC_EV_REJECTED = 4, MC_EV_MODIFIED = 5
};
enum { MC_CMD_SUBMIT = 0, MC_CMD_MARKET = 1, MC_CMD_CANCEL = 2, MC_CMD_MODIFY = 3 };
enum {
    MC_R_NONE = 0, MC_R_INVALID_QTY = 1, MC_R_INVALID_PRICE = 2, MC_R_INVALID_SIDE = 3,
    MC_R_INVALID_TIF = 4, MC_R_DUPLICATE_ORDER_ID = 5, MC_R_ORDER_NOT_FOUND = 6,
    MC_R_POST_ONLY_WOULD_CROSS = 7, MC_R_INVALID_COMMAND = 8, MC_R_UNKNOWN_SYMBOL = 9,
    MC_R_PRICE_NOT_ON_TICK = 10, MC_R_PRICE_OUTSIDE_BAND = 11, MC_R_QTY_ABOVE_MAX = 12,
    MC_R_NOTIONAL_ABOVE_MAX = 13, MC_R_CANCEL_REQUESTED = 20, MC_R_SELF_TRADE = 21,
    MC_R_IOC_REMAINDER = 22, MC_R_MARKET_REMAINDER = 23, MC_R_FOK_NOT_FILLABLE = 24
};
/* returned negated. MC_ERR_BUSY: a Python call that releases the GIL (process(), restore(), a
   replay, a journal write, ...) is running on the book or engine, or on the book's engine, in
   another thread; nothing was read or changed: call again when it is done. MC_ERR_READONLY:
   order entry (set_time, submit, market, cancel, modify, apply, process, book_clear,
   snapshot_restore) on a book of an engine (engine_book, Engine.book(s).handle): enter orders
   through the engine; the same on the book of an open matchcore.native.Recorder
   (rec.book.handle): enter orders through the Recorder, which journals them; snapshot_restore
   on a feed replayer's book: restore into a book of your own. */
enum { MC_ERR_NOMEM = 100, MC_ERR_HANDLE = 101, MC_ERR_BUSY = 102, MC_ERR_READONLY = 103 };
/* snapshot_restore errors (returned negated) */
enum {
    MC_SNAP_E_MAGIC = 1, MC_SNAP_E_VERSION = 2, MC_SNAP_E_TRUNCATED = 3, MC_SNAP_E_CHECKSUM = 4,
    MC_SNAP_E_CORRUPT = 5, MC_SNAP_E_NOMEM = 6
};

typedef uint64_t mc_book_h;     /* checked handle of one order book (0 is never valid) */
typedef uint64_t mc_engine_h;   /* checked handle of an engine: books keyed by symbol id */

/* One event, 64 bytes (matchcore.EVENT_DTYPE). */
typedef struct mc_event {
    int64_t ts_ns;
    uint64_t order_id;
    uint64_t maker_id;
    int64_t price;
    int64_t qty;
    uint64_t owner;
    uint64_t maker_owner;
    uint32_t symbol;
    uint8_t kind;      /* MC_EV_* */
    uint8_t side;
    uint8_t reason;    /* MC_R_* */
    uint8_t _pad;
} mc_event;

/* One command, 48 bytes (matchcore.COMMAND_DTYPE). */
typedef struct mc_command {
    int64_t ts_ns;
    uint64_t order_id;
    int64_t price;     /* MODIFY: 0 keeps the price */
    int64_t qty;
    uint64_t owner;
    uint32_t symbol;   /* engine: the book of SUBMIT / MARKET */
    uint8_t kind;      /* MC_CMD_* */
    uint8_t side;
    uint8_t tif;
    uint8_t post_only;
} mc_command;

#if defined(__cplusplus) && __cplusplus >= 201103L
#define MC_STATIC_ASSERT(c, m) static_assert(c, m)
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define MC_STATIC_ASSERT(c, m) _Static_assert(c, m)
#else
/* C99 and C++98/03 have neither: an array of negative size stops the compiler instead (one
   typedef name per line, as C99 allows no repeated typedef). */
#define MC_STATIC_ASSERT_NAME_(line) mc_static_assert_line_##line
#define MC_STATIC_ASSERT_LINE_(line) MC_STATIC_ASSERT_NAME_(line)
#define MC_STATIC_ASSERT(c, m) typedef char MC_STATIC_ASSERT_LINE_(__LINE__)[(c) ? 1 : -1]
#endif
MC_STATIC_ASSERT(sizeof(mc_event) == 64, "mc_event must be 64 bytes (EVENT_DTYPE)");
MC_STATIC_ASSERT(sizeof(mc_command) == 48, "mc_command must be 48 bytes (COMMAND_DTYPE)");
MC_STATIC_ASSERT(offsetof(mc_event, symbol) == 56 && offsetof(mc_event, kind) == 60,
                 "mc_event layout differs from EVENT_DTYPE");
MC_STATIC_ASSERT(offsetof(mc_command, symbol) == 40 && offsetof(mc_command, post_only) == 47,
                 "mc_command layout differs from COMMAND_DTYPE");

/* Function types of the table (names say what the table field is). */
typedef mc_book_h (*mc_book_new_fn)(int stp, int64_t capacity);
typedef int (*mc_book_free_fn)(mc_book_h b);
typedef mc_book_h (*mc_book_copy_fn)(mc_book_h b);
typedef int (*mc_book_clear_fn)(mc_book_h b);
typedef int (*mc_valid_fn)(uint64_t handle);
typedef int (*mc_set_time_fn)(mc_book_h b, int64_t ts_ns);
typedef int64_t (*mc_submit_fn)(mc_book_h b, uint64_t order_id, int side, int64_t price,
                                int64_t qty, int tif, uint64_t owner, int post_only);
typedef int64_t (*mc_market_fn)(mc_book_h b, uint64_t order_id, int side, int64_t qty,
                                uint64_t owner);
typedef int64_t (*mc_cancel_fn)(mc_book_h b, uint64_t order_id);
typedef int64_t (*mc_modify_fn)(mc_book_h b, uint64_t order_id, int64_t qty, int64_t price);
typedef int64_t (*mc_cancel_by_fn)(mc_book_h b, uint64_t order_id, uint64_t owner);
typedef int64_t (*mc_modify_by_fn)(mc_book_h b, uint64_t order_id, int64_t qty, int64_t price,
                                   uint64_t owner);
typedef int64_t (*mc_apply_fn)(mc_book_h b, const mc_command* cmd);
typedef int64_t (*mc_process_fn)(mc_book_h b, const mc_command* cmds, int64_t n);
typedef int (*mc_best_fn)(mc_book_h b, int side, int64_t* price, int64_t* qty);
typedef int64_t (*mc_depth_fn)(mc_book_h b, int side, int64_t n, int64_t* out);
typedef int (*mc_get_fn)(mc_book_h b, uint64_t order_id, int* side, int64_t* price,
                         int64_t* qty);
typedef int64_t (*mc_queue_position_fn)(mc_book_h b, uint64_t order_id);
typedef int64_t (*mc_count_fn)(mc_book_h b);
typedef int64_t (*mc_level_count_fn)(mc_book_h b, int side);
typedef uint64_t (*mc_state_hash_fn)(mc_book_h b);
typedef int64_t (*mc_pending_events_fn)(mc_book_h b);
typedef int64_t (*mc_drain_events_fn)(mc_book_h b, mc_event* out, int64_t cap);
typedef int64_t (*mc_drain_events_owner_fn)(mc_book_h b, uint64_t owner, mc_event* out,
                                            int64_t cap);
typedef int (*mc_clear_events_fn)(mc_book_h b);
typedef int64_t (*mc_snapshot_size_fn)(mc_book_h b);
typedef int64_t (*mc_snapshot_write_fn)(mc_book_h b, uint8_t* out, int64_t cap);
typedef int (*mc_snapshot_restore_fn)(mc_book_h b, const uint8_t* data, int64_t n);

typedef int (*mc_engine_set_time_fn)(mc_engine_h e, int64_t ts_ns);
typedef int64_t (*mc_engine_submit_fn)(mc_engine_h e, uint32_t symbol, uint64_t order_id,
                                       int side, int64_t price, int64_t qty, int tif,
                                       uint64_t owner, int post_only);
typedef int64_t (*mc_engine_market_fn)(mc_engine_h e, uint32_t symbol, uint64_t order_id,
                                       int side, int64_t qty, uint64_t owner);
typedef int64_t (*mc_engine_cancel_fn)(mc_engine_h e, uint32_t symbol, uint64_t order_id);
typedef int64_t (*mc_engine_modify_fn)(mc_engine_h e, uint32_t symbol, uint64_t order_id,
                                       int64_t qty, int64_t price);
typedef int64_t (*mc_engine_cancel_by_fn)(mc_engine_h e, uint32_t symbol, uint64_t order_id,
                                          uint64_t owner);
typedef int64_t (*mc_engine_modify_by_fn)(mc_engine_h e, uint32_t symbol, uint64_t order_id,
                                          int64_t qty, int64_t price, uint64_t owner);
typedef int64_t (*mc_engine_process_fn)(mc_engine_h e, const mc_command* cmds, int64_t n);
typedef mc_book_h (*mc_engine_book_fn)(mc_engine_h e, uint32_t symbol);
typedef int (*mc_engine_get_fn)(mc_engine_h e, uint64_t order_id, uint32_t* symbol,
                                int* side, int64_t* price, int64_t* qty);
typedef int64_t (*mc_engine_count_fn)(mc_engine_h e);
typedef uint64_t (*mc_engine_state_hash_fn)(mc_engine_h e);
typedef int64_t (*mc_engine_pending_events_fn)(mc_engine_h e);
typedef int64_t (*mc_engine_drain_events_fn)(mc_engine_h e, mc_event* out, int64_t cap);
typedef int64_t (*mc_engine_drain_events_owner_fn)(mc_engine_h e, uint64_t owner,
                                                   mc_event* out, int64_t cap);

typedef struct mc_api_v2 {
    uint32_t version;            /* MC_API_VERSION of the library */
    uint32_t size;               /* sizeof(mc_api_v2) in the library */
    uint32_t event_size;         /* sizeof(mc_event) in the library */
    uint32_t command_size;       /* sizeof(mc_command) in the library */

    /* ---- book lifecycle ---- */
    mc_book_new_fn book_new;             /* 0 when out of memory, for an stp other than
                                            MC_STP_* or a capacity outside [0, 2**30] */
    mc_book_free_fn book_free;           /* 0; -MC_ERR_HANDLE unless book_new/book_copy made it */
    mc_book_copy_fn book_copy;           /* deep copy with the pending events (as Python
                                            copy() and pickle), owned by the caller (0 on
                                            error) */
    mc_book_clear_fn book_clear;         /* remove every order, no events */
    mc_valid_fn book_valid;              /* 1 if the handle names a live book, else 0 */
    mc_valid_fn engine_valid;            /* 1 if the handle names a live engine, else 0 */

    /* ---- order entry: executed qty >= 0, or -MC_R_* / -MC_ERR_NOMEM ---- */
    mc_set_time_fn set_time;             /* ts stamped into the events of later calls */
    mc_submit_fn submit;                 /* limit order (GTC / IOC / FOK, post-only) */
    mc_market_fn market;                 /* market order, remainder expires */
    mc_cancel_fn cancel;                 /* open qty removed, or -MC_R_ORDER_NOT_FOUND */
    mc_modify_fn modify;                 /* new qty, price (0 = keep) */
    /* (cancel and modify name no sender: the REJECTED event of an id that is not resting has
       owner 0; cancel_by / modify_by at the end of the table take the sender's owner, as
       process() and the Python owner= do) */
    mc_apply_fn apply;                   /* one command record */
    mc_process_fn process;               /* n command records; returns how many applied */

    /* ---- queries (a side other than MC_BUY / MC_SELL: -MC_R_INVALID_SIDE, nothing read).
     * A level total or a qty ahead beyond int64 (levels are summed in 128 bits) reads as
     * INT64_MAX here; the Python methods give it exactly. depth and depth_orders walk from the
     * touch and, past 256 or more levels emptied below it, pack them out of the ladder (its
     * layout only: no level, order, event or state hash changes), as the Python methods do. ---- */
    mc_best_fn best;                     /* 1 + (price, level qty), 0 if the side is empty */
    mc_depth_fn depth;                   /* n levels best first into out[2n]: price, qty */
    mc_depth_fn depth_orders;            /* into out[3n]: price, qty, order count */
    mc_get_fn get;                       /* 1 + (side, price, open qty), 0 if not resting */
    mc_queue_position_fn queue_position; /* open qty ahead at its level, -1 if not resting */
    mc_count_fn count;                   /* resting orders */
    mc_level_count_fn level_count;       /* price levels on a side */
    mc_state_hash_fn state_hash;         /* OrderBook.state_hash(): what decides future
                                            matching (levels and queues in order, ids, open
                                            qtys, owners, post-only flags, STP mode); not the
                                            clock, pending events or symbol id */

    /* ---- events ---- */
    mc_pending_events_fn pending_events;
    mc_drain_events_fn drain_events;     /* move up to cap events to out; the rest stay */
    mc_drain_events_owner_fn drain_events_owner; /* up to cap of owner's (as owner or maker);
                                                    every other event before the first of owner's
                                                    left pending is dropped (all of them when none
                                                    is left; cap 0: those before owner's first);
                                                    cap < 0: -MC_R_INVALID_COMMAND, nothing read,
                                                    written or dropped */
    mc_clear_events_fn clear_events;

    /* ---- snapshots (versioned, checksummed) ---- */
    mc_snapshot_size_fn snapshot_size;
    mc_snapshot_write_fn snapshot_write; /* bytes written, -1 if cap too small */
    mc_snapshot_restore_fn snapshot_restore; /* 0, or -MC_SNAP_E_* (or -MC_ERR_*) with the
                                                book unchanged */

    /* ---- multi-symbol engine (created in Python: matchcore.Engine(...).handle) ---- */
    mc_engine_set_time_fn engine_set_time;
    mc_engine_submit_fn engine_submit;
    mc_engine_market_fn engine_market;
    mc_engine_cancel_fn engine_cancel;   /* by id; symbol only echoed if the id rests nowhere */
    mc_engine_modify_fn engine_modify;
    mc_engine_process_fn engine_process;
    mc_engine_book_fn engine_book;       /* 0 if unknown; for queries: order entry on it
                                            returns -MC_ERR_READONLY (use the engine's) */
    mc_engine_get_fn engine_get;
    mc_engine_count_fn engine_count;
    mc_engine_state_hash_fn engine_state_hash;
    mc_engine_pending_events_fn engine_pending_events;
    mc_engine_drain_events_fn engine_drain_events;
    mc_engine_drain_events_owner_fn engine_drain_events_owner; /* as drain_events_owner */

    /* ---- appended: cancel and modify naming their sender. `owner` goes into the REJECTED
     * event of an id that is not resting (a resting order's reject carries its own owner);
     * otherwise as cancel / modify / engine_cancel / engine_modify. ---- */
    mc_cancel_by_fn cancel_by;
    mc_modify_by_fn modify_by;
    mc_engine_cancel_by_fn engine_cancel_by;
    mc_engine_modify_by_fn engine_modify_by;
} mc_api_v2;

#ifdef Py_PYTHON_H
/* Import the table (needs the GIL, once). Returns NULL with a Python exception set when
 * matchcore cannot be imported or its table is not the one this header describes (another API
 * version, older or newer, or other table or record sizes). */
static inline const mc_api_v2* mc_import_api(void) {
    /* PyCapsule_Import only imports the top package, so load the submodule first. */
    PyObject* mod = PyImport_ImportModule("matchcore._capi");
    if (mod == NULL)
        return NULL;
    Py_DECREF(mod);
    const mc_api_v2* api = (const mc_api_v2*)PyCapsule_Import(MC_CAPSULE_NAME, 0);
    if (api == NULL)
        return NULL;
    if (api->version != MC_API_VERSION || api->size < sizeof(mc_api_v2)
            || api->event_size != sizeof(mc_event) || api->command_size != sizeof(mc_command)) {
        PyErr_SetString(PyExc_ImportError,
                        "matchcore C API does not match the matchcore.h this was built with");
        return NULL;
    }
    return api;
}
#endif

#ifdef __cplusplus
}
#endif

#endif /* MATCHCORE_H */
