"""A command file its user may not write (``chmod a-w``): ``write_commands`` refuses it as
``open()`` and a ``Recorder`` refuse it, and leaves it as it was."""
from __future__ import annotations

import os

import numpy as np

import matchcore as mc
import matchcore._cliutil  # noqa: F401  (loaded before the child drops privileges)
import matchcore._tempfiles  # noqa: F401
from matchcore.native import Recorder, read_commands, write_commands

from unprivileged import NOBODY, exit_code_as_nobody, reachable_dir


def test_native_write_commands_write_protected_file_refused_left_as_it_was(request):
    # the new file was renamed over it (the directory allows that): a flow file its owner
    # protected with chmod a-w was replaced, where a Recorder on that path, open() and the
    # command line's outputs refuse it with PermissionError
    d = os.path.join(reachable_dir(request), "flows")
    os.mkdir(d)
    cmds = np.zeros(5, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, 6)
    cmds["price"] = 100
    cmds["qty"] = 1
    p = os.path.join(d, "day.mccmd")
    write_commands(p, cmds)
    os.chmod(p, 0o444)
    if os.geteuid() == 0:
        os.chown(d, NOBODY, NOBODY)         # the user may make and rename files here
        os.chown(p, NOBODY, NOBODY)
    before = open(p, "rb").read()

    def check():
        code = 0
        for name, call in (("write_commands", lambda: write_commands(p, cmds[:2])),
                           ("Recorder", lambda: Recorder(mc.OrderBook(), p, overwrite=True))):
            try:
                call()
                print(name, "did not raise")
                code = 2
            except PermissionError as exc:
                if exc.filename != p:
                    print(name, repr(exc), exc.filename)
                    code = 3
            except BaseException as exc:
                print(name, type(exc).__name__, exc)
                code = 4
        return code

    assert exit_code_as_nobody(check) == 0
    assert open(p, "rb").read() == before
    assert os.listdir(d) == ["day.mccmd"]
    assert len(read_commands(p)) == 5
