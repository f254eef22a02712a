"""The group-commit thread of an fsync="batch" journal timed its waits on the wall clock
(CLOCK_REALTIME). A clock stepped back while it waited (NTP, an operator setting the date) moved
its deadline that far into the future: a quiet engine's acknowledged commands stayed off the
disk (``durable_seq`` behind ``journal_seq``) until the clock caught up, an hour for a step of
an hour, where ``batch_us`` promises about 2 ms. Its waits are now timed on CLOCK_MONOTONIC.

The step is made in a child process only: a preloaded shim makes every CLOCK_REALTIME reading
an hour ahead of the kernel's, which is what a wait sees when the clock is stepped back an hour
right after each reading (the kernel times a CLOCK_REALTIME wait on its own clock)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="LD_PRELOAD shim and CLOCK_MONOTONIC waits: Linux")

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
static int (*real_clock_gettime)(clockid_t, struct timespec*);
int clock_gettime(clockid_t clk, struct timespec* ts) {
    if (!real_clock_gettime)
        real_clock_gettime = (int (*)(clockid_t, struct timespec*))dlsym(RTLD_NEXT,
                                                                          "clock_gettime");
    int rc = real_clock_gettime(clk, ts);
    if (rc == 0 && clk == CLOCK_REALTIME)
        ts->tv_sec += 3600;
    return rc;
}
"""

CHILD = textwrap.dedent("""
    import json, sys, time
    import matchcore as mc
    eng = mc.Engine(journal=sys.argv[1], fsync="batch", batch_us=2000)
    eng.add_symbol(1, "AAPL")
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    # polled, not slept on: a syncer that wakes every 2 ms makes both equal at once; the
    # bound only ends a child whose syncer does not wake (an hour, before the fix)
    end = time.monotonic() + 60
    while eng.durable_seq < eng.journal_seq and time.monotonic() < end:
        time.sleep(0.005)
    print(json.dumps({"journal_seq": eng.journal_seq, "durable_seq": eng.durable_seq}))
    eng.close()
""")


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler for the clock shim")
    d = tmp_path_factory.mktemp("clock_shim")
    (d / "shim.c").write_text(SHIM)
    so = d / "shim.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(so), str(d / "shim.c"), "-ldl"],
                   check=True, capture_output=True)
    return so


def _preloading(shim):
    # after whatever is preloaded already (an AddressSanitizer build needs libasan first)
    return {**os.environ, "LD_PRELOAD": " ".join(filter(None, [os.environ.get("LD_PRELOAD"),
                                                              str(shim)]))}


def _child(tmp_path, preload=None):
    env = dict(os.environ) if preload is None else _preloading(preload)
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "j")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_durability_shim_moves_the_wall_clock_only(shim, tmp_path):
    # the shim does what the test below relies on: wall clock an hour ahead, monotonic as is
    code = ("import time; print(time.time(), time.monotonic())")
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()
    shifted = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=_preloading(shim)).stdout.split()
    assert 3500 < float(shifted[0]) - float(plain[0]) < 3700
    assert abs(float(shifted[1]) - float(plain[1])) < 600


def test_durability_batch_syncer_not_held_by_a_wall_clock_stepped_back(shim, tmp_path):
    got = _child(tmp_path, preload=shim)
    assert got["journal_seq"] == 2
    assert got["durable_seq"] == 2      # was 0: the syncer slept until the clock caught up


def test_durability_batch_syncer_without_clock_step(tmp_path):
    got = _child(tmp_path)
    assert got == {"journal_seq": 2, "durable_seq": 2}
