"""A LocalCluster started by matchcore leaves the caller's environment as it was: a Nanny sets
its workers' variables in the parent's os.environ before it spawns them (PYTHONHASHSEED=6640,
OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_, ...), and every later subprocess of the caller's
inherited them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("distributed")

_SCRIPT = r"""
import json, os, sys


def main():
    from matchcore.cluster.dask import connect, replay_files
    from matchcore.itch import generate

    os.environ.pop("PYTHONHASHSEED", None)
    os.environ["OMP_NUM_THREADS"] = "3"          # the caller's own setting, kept as it was
    before = dict(os.environ)
    client = connect("local", workers=1)
    after_start = dict(os.environ)
    worker_env = list(client.run(lambda: (os.environ.get("PYTHONHASHSEED"),
                                          os.environ.get("OMP_NUM_THREADS"))).values())
    client.close()
    after_close = dict(os.environ)
    day = os.path.join(sys.argv[1], "day.itch")
    generate(day, messages=2000)
    res = replay_files([day], "local", workers=1)
    after_replay = dict(os.environ)

    def changed(env):
        return sorted(k for k in set(env) | set(before) if env.get(k) != before.get(k))

    print(json.dumps({"start": changed(after_start), "close": changed(after_close),
                      "replay": changed(after_replay), "workers": worker_env,
                      "books": len(res.files[0].books)}))


if __name__ == "__main__":
    main()
"""


@pytest.mark.timeout(300)
def test_dask_local_cluster_leaves_the_callers_environment_as_it_was(tmp_path):
    script = tmp_path / "env.py"
    script.write_text(_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (got["start"], got["close"], got["replay"]) == ([], [], []), got
    # the workers still get the Nanny's hash seed, and the caller's own thread setting
    assert got["workers"] == [["6640", "3"]], got
    assert got["books"] > 0
