"""matchcore.feeds.dbn_gen.generate_mbo: its version= argument checked before any record is
made."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("version, error", [(0, ValueError), (4, ValueError), (-1, ValueError),
                                            (2**40, ValueError), (True, TypeError),
                                            ("3", TypeError), (2.0, TypeError)])
def test_dbn_gen_version_outside_the_read_ones_refused_naming_it(tmp_path, version, error):
    # version=0 wrote a version 1 file without a word, 7 raised the package's DBNError and -1
    # an OverflowError ("number too small to fit in target type"), each after every record
    # was made
    out = tmp_path / "v.dbn"
    with pytest.raises(error, match=r"version must be None or an integer in 1\.\.3"):
        generate_mbo(out, records=10, version=version)
    assert not out.exists()
    for ok in (1, 2, 3):
        assert generate_mbo(None, records=10, version=ok)[3] == ok


def test_dbn_gen_empty_path_or_one_naming_a_directory_refused_before_any_record(tmp_path):
    # "" failed writing "." ("Is a directory: '.'") and "out.dbn/" wrote the file out.dbn
    import os

    with pytest.raises(ValueError, match="^path: an empty path$"):
        generate_mbo("", records=10)
    given = str(tmp_path / "out.dbn") + os.sep
    with pytest.raises(ValueError, match=f"^path: {given} names a directory"):
        generate_mbo(given, records=10)
    assert list(tmp_path.iterdir()) == []
