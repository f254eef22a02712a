"""Output files whose names leave no room for the temporary's decorations
(``.<name>.<pid>.<hex>.part`` is 20-odd bytes longer than the name, and a name may take 255):
written through a temporary all the same, so that an interrupted command leaves the old file
or none, never a truncated one under the final name."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from matchcore._cliutil import atomic_output, remove_stale_parts


def _name_max(directory) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


@pytest.mark.parametrize("extra", [0, 1, 30])
def test_atomic_output_longest_names_interrupted_leave_old_file_and_no_temporary(tmp_path,
                                                                                 extra):
    # a name within 30 bytes of the limit: the temporary could not be made, the file was
    # written in place, and an interrupted write left its first part as the whole file
    name = "b" * (_name_max(tmp_path) - 4 - extra) + ".csv"
    path = tmp_path / name
    for old in (None, "old\n"):
        if old is not None:
            path.write_text(old)
        with pytest.raises(KeyboardInterrupt):
            with atomic_output(path) as f:
                f.write("half")
                f.flush()
                assert (path.read_text() if path.exists() else None) == old
                raise KeyboardInterrupt
        assert (path.read_text() if path.exists() else None) == old
        assert os.listdir(tmp_path) == ([name] if old else [])
    with atomic_output(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == [name]


def test_long_names_temporaries_of_a_dead_writer_removed_others_kept(tmp_path):
    long_a = "a" * (_name_max(tmp_path) - 4) + ".csv"
    long_b = "a" * (_name_max(tmp_path) - 5) + "x.csv"      # the same first bytes
    dead = subprocess.run([sys.executable, "-c", f"""
import os
from matchcore._cliutil import atomic_output
with atomic_output({str(tmp_path / long_a)!r}) as f:
    f.write("half"); f.flush()
    os._exit(0)
"""], timeout=60)
    assert dead.returncode == 0
    left = [n for n in os.listdir(tmp_path) if n.endswith(".part")]
    assert len(left) == 1 and len(os.fsencode(left[0])) <= _name_max(tmp_path)
    assert remove_stale_parts(tmp_path / long_b) == []          # another file's
    assert remove_stale_parts(tmp_path / long_a) == left
    assert os.listdir(tmp_path) == []
