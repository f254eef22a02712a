"""``demo``'s printed report: its headers count what follows them."""
from __future__ import annotations

import pytest

from cli_replay_checks import run_cli


@pytest.mark.parametrize("fills, header", [("0", None), ("1", "first 1 fill (aggressor")])
def test_cli_demo_fills_header_counts_what_follows(capsys, fills, header):
    # --fills 0 printed "first 0 fills (...):" over nothing, and --fills 1 "first 1 fills"
    rc, out, err = run_cli(capsys, "demo", "--messages", "2000", "--fills", fills)
    assert rc == 0 and err == "", err
    lines = [x for x in out.splitlines() if x.startswith("first ")]
    assert lines == ([] if header is None else [x for x in lines if x.startswith(header)]), lines
    assert len(lines) == (0 if header is None else 1)
