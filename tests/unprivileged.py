"""Checks run as another user than root: root may write any file and list any directory, so a
refusal that depends on permissions is only seen by a child process that drops to nobody."""
from __future__ import annotations

import os
import shutil
import tempfile

NOBODY = 65534


def reachable_dir(request) -> str:
    """A new directory, removed after the test, that another user can reach (pytest's
    ``tmp_path`` is not: its parents are root's alone)."""
    top = tempfile.mkdtemp()
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    os.chmod(top, 0o755)
    return top


def exit_code_as_nobody(check) -> int:
    """The exit code of ``check()`` run in a forked child that, when run by root, drops to
    nobody first: its return value (0 for what the test expects; it prints what it saw
    otherwise), 4 for an exception it let out (printed). Import what the check needs before:
    the child may no longer be able to read the interpreter's library."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(NOBODY, NOBODY, NOBODY)
                os.setresuid(NOBODY, NOBODY, NOBODY)
            code = check()
        except BaseException as exc:
            print(type(exc).__name__, exc)
            code = 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
