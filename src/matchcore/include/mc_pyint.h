/* The value of a Python int that fits in a machine word, read straight from the object.
 *
 * Every per-call method converts its integer arguments; Cython's general conversion is an
 * out-of-line call of about 20 instructions per argument, and a submit converts seven of them.
 * An exact int of at most two 30-bit digits (|v| < 2**60: every price, quantity, order id and
 * timestamp a simulator uses in practice) is read here in a few inlined instructions; anything
 * else takes the caller's general path, which keeps its checks and its errors. The general path
 * reads an int subclass of that size (an IntEnum member such as Side.BUY, a bool) the same way
 * (mc_pyint_sub_small): it has the int layout, and PyNumber_Index would give its own value. Kept
 * out of the inlined test, which then costs exact ints nothing. */
#ifndef MC_PYINT_H
#define MC_PYINT_H

#include <Python.h>
#include <stdint.h>

#if PY_VERSION_HEX >= 0x030C0000
/* 3.12 changed the int layout; the compact-value API is the supported way in. */
static inline int mc_pyint_fits(PyObject* x) {
    return PyUnstable_Long_IsCompact((PyLongObject*)x);
}
static inline int64_t mc_pyint_value(PyObject* x) {
    return (int64_t)PyUnstable_Long_CompactValue((PyLongObject*)x);
}
#else
#if PYLONG_BITS_IN_DIGIT != 30
#error "mc_pyint.h expects 30-bit digits"
#endif
static inline int mc_pyint_fits(PyObject* x) {
    /* ob_size is the signed digit count: -2..2 fits int64 with room to spare */
    return (size_t)(Py_SIZE(x) + 2) <= 4;
}
static inline int64_t mc_pyint_value(PyObject* x) {
    const digit* d = ((PyLongObject*)x)->ob_digit;
    Py_ssize_t s = Py_SIZE(x);
    int64_t v;
    if (s == 0)
        return 0;
    v = (int64_t)d[0];
    if (s == 2 || s == -2)
        v |= (int64_t)d[1] << PyLong_SHIFT;
    return s < 0 ? -v : v;
}
#endif

/* An int of at most two digits (mc_pyint_fits is only asked of an int) */
static inline int mc_pyint_small(PyObject* x) {
    return PyLong_CheckExact(x) && mc_pyint_fits(x);
}
static inline int mc_pyint_sub_small(PyObject* x) {
    return PyLong_Check(x) && mc_pyint_fits(x);
}

/* The conversions themselves, inlined into every method (a static inline function that calls
 * out on the general path is not inlined by the compiler once error handling is added to it, so
 * the general path is passed in and these are macros): `any_i64` etc. are the module's general
 * conversions, which raise. */
#define MC_AS_I64(x, any_i64) (mc_pyint_small(x) ? mc_pyint_value(x) : (any_i64)(x))
#define MC_AS_U64(x, any_u64) \
    ((mc_pyint_small(x) && mc_pyint_value(x) >= 0) ? (uint64_t)mc_pyint_value(x) : (any_u64)(x))
#define MC_AS_INT(x, any_int)                                                               \
    ((mc_pyint_small(x) && mc_pyint_value(x) >= INT32_MIN && mc_pyint_value(x) <= INT32_MAX) \
         ? (int)mc_pyint_value(x)                                                          \
         : (any_int)(x))

#endif /* MC_PYINT_H */
