"""LOBSTER files too large for the memory: the MemoryError names the file and says why reading
it takes more than its size (a message file's fields are read as text first)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

_SCRIPT = r"""
import resource, sys
from matchcore import lobster

read = lobster.read_messages if sys.argv[1] == "message" else lobster.read_orderbook
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# room for a few MB: reading the file takes several times its size
resource.setrlimit(resource.RLIMIT_AS, (vm + 16 * 2**20, resource.RLIM_INFINITY))
try:
    read(sys.argv[2])
except MemoryError as ex:
    print(ex)
else:
    raise SystemExit("no MemoryError under the limit")
"""


def _write_files(d, n=200_000, levels=10):
    k = np.arange(n)
    msg = d / "m_message_10.csv"
    with open(msg, "w") as f:
        for i in k:
            f.write(f"{34200 + i / 1000:.9f},1,{i + 1},100,{5850000 + (i % 100) * 100},"
                    f"{1 if i % 2 else -1}\n")
    book = d / "m_orderbook_10.csv"
    row = ",".join(f"{5860000 + j * 100},100,{5850000 - j * 100},100" for j in range(levels))
    with open(book, "w") as f:
        f.write((row + "\n") * n)
    return {"message": msg, "orderbook": book}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc (Linux)")
def test_lobster_file_beyond_memory_names_file_and_why(tmp_path):
    # numpy's own error named neither the file nor why an 80 MB file ran out: "Unable to
    # allocate 17.2 MiB for an array with shape (50000, 6) and data type <U15", or a bare
    # MemoryError(), which the command line showed as "error: out of memory"
    files = _write_files(tmp_path)
    for kind, path in files.items():
        r = subprocess.run([sys.executable, "-c", _SCRIPT, kind, str(path)], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        why = {"message": "its fields are read as text first, which takes many times the "
                          "file's size (about 1.5 GB for an 80 MB file of 2 million messages)",
               "orderbook": "the whole file and its rows as integers take several times the "
                            "file's size (about 1.5 GB for a 240 MB file of a million rows of "
                            "10 levels)"}[kind]
        assert r.stdout.strip() == (
            f"{path}: not enough memory to read this LOBSTER {kind} file "
            f"({path.stat().st_size:,} bytes): {why}; free memory or split the file"), kind
