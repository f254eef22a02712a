"""Makers of refused calls for the "a refusal changes nothing" tests of the lone book and the
Engine: each call is made at ts_ns=999, on an object whose clocks stand elsewhere."""
from __future__ import annotations

import numpy as np

import matchcore as mc

REFUSED_AT_NS = 999


def batch(**fields):
    """A one-command process() of these fields (the rest zero) at REFUSED_AT_NS."""
    c = np.zeros(1, mc.COMMAND_DTYPE)
    c["ts_ns"] = REFUSED_AT_NS
    for k, v in fields.items():
        c[k] = v
    return lambda target: target.process(c)


def call(name, *args, **kwargs):
    """The method ``name`` called with these arguments at REFUSED_AT_NS."""
    return lambda target: getattr(target, name)(*args, ts_ns=REFUSED_AT_NS, **kwargs)
