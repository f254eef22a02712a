"""A snapshot directory its user may not write: the error names the snapshot asked for."""
from __future__ import annotations

import os

import matchcore as mc
import matchcore._tempfiles  # noqa: F401  (loaded before the child drops privileges)
import matchcore.durability.snapshot  # noqa: F401

from unprivileged import exit_code_as_nobody, reachable_dir


def test_snapshot_into_write_protected_directory_names_the_snapshot_leaves_nothing(request):
    # the temporary file could not be made: PermissionError named that temporary
    # (snapshot-<seq>.mcs.tmp<pid>.<hex>), a name the caller never gave, and did not say that
    # the snapshot was not written, where write_commands, a Recorder and the CLI outputs name
    # the file asked for
    d = os.path.join(reachable_dir(request), "snaps")
    os.mkdir(d)
    os.chmod(d, 0o555)
    eng = mc.Engine()
    eng.add_symbol(1, "A")
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    final = os.path.join(d, "snapshot-00000000000000000000.mcs")

    def check():
        try:
            eng.snapshot(d)
            print("did not raise")
            return 2
        except PermissionError as exc:
            if exc.filename != final or "the snapshot could not be written" not in str(exc):
                print(repr(exc), exc.filename)
                return 3
        return 0

    status = exit_code_as_nobody(check)
    os.chmod(d, 0o755)
    assert status == 0
    assert os.listdir(d) == []
