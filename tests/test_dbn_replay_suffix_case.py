"""The DBN names by which a file is told where its bytes cannot be (``.dbn``, ``.dbn.zst``,
``.dbn.gz``) match in any case, as output names do: ``DAY.DBN.ZST`` is a ``.dbn.zst`` file."""
from __future__ import annotations

import gzip

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from cli_replay_checks import run_cli  # noqa: E402

from matchcore._magic import detect_format  # noqa: E402
from matchcore.feeds.dbn import is_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("name, codec", [("cut.DBN.ZST", "zstd"), ("cut.Dbn.Zst", "zstd"),
                                         ("cut.DBN.GZ", "gzip"), ("cut.dbn.Gz", "gzip")])
def test_dbn_cut_before_anything_decompresses_taken_as_dbn_by_its_name_in_any_case(
        tmp_path, capsys, name, codec):
    # cut.dbn.zst was said to be cut short; cut.DBN.ZST, the same bytes, was refused by the
    # ITCH reader as "a zstd-compressed file" (and a .DBN.GZ as damaged ITCH)
    plain = generate_mbo(None, records=1500, instruments=2, seed=3)
    data = (generate_mbo(tmp_path / "c.dbn.zst", records=1500, instruments=2, seed=3)
            .read_bytes() if codec == "zstd" else gzip.compress(plain))
    cut = tmp_path / name
    cut.write_bytes(data[:10])
    assert is_dbn(cut) and detect_format(cut) == "dbn"
    code, _, err = run_cli(capsys, "replay", str(cut), "--no-progress")
    assert code == 1 and f"error: {cut}: truncated {codec} data: the compressed stream is " \
                          "cut short" in err


def test_dbn_named_file_holding_no_dbn_refused_as_dbn_in_any_case(tmp_path, capsys):
    # a file named .DBN that holds no DBN stream: refused by the DBN replay, as a .dbn is
    path = tmp_path / "day.DBN"
    path.write_bytes(b"\x00\x0bS" + bytes(10))
    assert detect_format(path) == "dbn"
    code, _, err = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 1 and "not a DBN stream" in err


def test_dbn_gen_compresses_a_zst_name_in_any_case(tmp_path):
    path = generate_mbo(tmp_path / "day.DBN.ZST", records=100, instruments=1, seed=1)
    assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd" and is_dbn(path)
