"""A snapshot directory its user may not write: the error names the snapshot asked for."""
from __future__ import annotations

import os
import shutil
import tempfile

import matchcore as mc
import matchcore._tempfiles  # noqa: F401  (loaded before the child drops privileges)
import matchcore.durability.snapshot  # noqa: F401


def test_snapshot_into_write_protected_directory_names_the_snapshot_leaves_nothing(request):
    # the temporary file could not be made: PermissionError named that temporary
    # (snapshot-<seq>.mcs.tmp<pid>.<hex>), a name the caller never gave, and did not say that
    # the snapshot was not written, where write_commands, a Recorder and the CLI outputs name
    # the file asked for
    top = tempfile.mkdtemp()                # reachable by the other user of the root case
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    os.chmod(top, 0o755)
    d = os.path.join(top, "snaps")
    os.mkdir(d)
    os.chmod(d, 0o555)
    eng = mc.Engine()
    eng.add_symbol(1, "A")
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    final = os.path.join(d, "snapshot-00000000000000000000.mcs")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
            try:
                eng.snapshot(d)
                print("did not raise")
                code = 2
            except PermissionError as exc:
                code = 0
                if exc.filename != final or "the snapshot could not be written" not in str(exc):
                    print(repr(exc), exc.filename)
                    code = 3
            except BaseException as exc:
                print(type(exc).__name__, exc)
                code = 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    os.chmod(d, 0o755)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.listdir(d) == []
