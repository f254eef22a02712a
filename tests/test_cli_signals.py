"""Output files of the command line (``--dump-book``, ``--out``, ``--json``, ``--csv``) appear
complete or not at all."""
from __future__ import annotations

import pytest

from matchcore._cliutil import atomic_output


def test_atomic_output_interrupted_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(path) as f:
            f.write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with atomic_output(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_output_symlink_written_in_place(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with atomic_output(link) as f:
        f.write("x\n")
    assert link.is_symlink() and target.read_text() == "x\n"
