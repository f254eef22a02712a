"""A JournalWriter's flags are booleans, as its stub and docstrings say ("Whether ..."), before
and after the journal fails, so that ``writer.failed is True`` says what it reads."""
from __future__ import annotations

import os

import matchcore as mc
from matchcore.durability import JournalError
from durability_checks import journaled


def test_journal_writer_failed_is_a_bool_before_and_after_a_refused_write(tmp_path):
    # it returned the C flag as an int: 0, then 1 once a forked child's write ended it
    eng, _ = journaled(tmp_path)
    eng.add_symbol(1)
    assert eng.journal.failed is False and eng.trade_journal.failed is False
    assert eng.journal.closed is False
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                eng.submit(1, 1, mc.Side.BUY, 100, 5)
            except JournalError:
                code = 0 if eng.journal.failed is True else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert eng.journal.failed is False
    eng.close()
    assert eng.journal.failed is False and eng.journal.closed is True

