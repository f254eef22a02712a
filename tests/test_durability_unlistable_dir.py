"""A journal directory whose files cannot be listed: the readers' one exception, naming it."""
from __future__ import annotations

import os

import matchcore as mc
import matchcore.durability.recovery  # noqa: F401  (loaded before the child drops privileges)
import matchcore.durability.trades  # noqa: F401
from matchcore.durability import JournalError

from unprivileged import exit_code_as_nobody, reachable_dir


def _files(d):
    return sorted((n, os.path.getsize(os.path.join(d, n))) for n in os.listdir(d))


def test_readers_of_a_directory_that_cannot_be_listed_raise_journal_error(request):
    # no read permission on the directory (search and write kept): read_journal, read_trades,
    # inspect and recovery raised a bare PermissionError from inside the scan, where the
    # readers' contract is JournalError (as for a segment file that cannot be read)
    d = os.path.join(reachable_dir(request), "j")
    eng = mc.Engine(journal=d)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    eng.snapshot()
    eng.close()
    before = _files(d)
    calls = {"read_journal": lambda: mc.durability.read_journal(d),
             "read_trades": lambda: mc.durability.read_trades(d),
             "inspect": lambda: mc.durability.inspect(d),
             "recover readonly": lambda: mc.Engine.recover(d, readonly=True),
             "recover": lambda: mc.Engine.recover(d)}

    def check():
        code = 0
        for name, call in calls.items():
            try:
                call()
                print(name, "did not raise")
                code = 2
            except JournalError as exc:
                if (f"{d} cannot be read: Permission denied" not in str(exc)
                        or exc.path != d or not isinstance(exc.__cause__, PermissionError)):
                    print(name, repr(exc))
                    code = 3
            except BaseException as exc:
                print(name, type(exc).__name__, exc)
                code = 4
        return code

    os.chmod(d, 0o311)
    status = exit_code_as_nobody(check)
    os.chmod(d, 0o755)
    assert status == 0
    assert _files(d) == before
