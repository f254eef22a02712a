"""``benchmarks/bench_durability.py --dir DIR``: where its journals go. A directory it cannot
make them in is a usage error before any work, not a traceback from ``tempfile``."""
from __future__ import annotations

import pytest

from bench_checks import refused_before_work


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bench_durability_script_dir_unusable_usage_error_before_work(monkeypatch, capsys,
                                                                       tmp_path, kind):
    # --dir /no/such/dir (or a file) ended in mkdtemp()'s FileNotFoundError (NotADirectoryError)
    # traceback, once the script had started
    where = tmp_path / "no-such-dir"
    if kind == "file":
        where.write_text("")
    err = refused_before_work(monkeypatch, capsys, "bench_durability", "run",
                              ["--dir", str(where)])
    assert f"argument --dir: {where}: " in err
    assert ("no such directory" if kind == "missing" else "is not a directory") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["no-such-dir"] if kind == "file"
                                                          else [])


def test_bench_durability_script_dir_existing_taken(monkeypatch, capsys, tmp_path):
    from bench_checks import load_script

    mod = load_script("bench_durability")
    roots = []

    def run(*args, **kwargs):
        roots.append(args[6])
        raise KeyboardInterrupt         # the first piece of work reached: stop there

    monkeypatch.setattr(mod, "run", run)
    with pytest.raises(KeyboardInterrupt):
        mod.main(["--dir", str(tmp_path)])
    assert len(roots) == 1 and roots[0].startswith(str(tmp_path))
