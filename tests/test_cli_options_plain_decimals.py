"""Options that take seconds or a rate (a float) take plain ASCII decimal syntax, as the integer
options take plain digits: Python's ``float()`` also took ``1_0``, padding, other scripts'
digits, ``inf`` and ``nan``. A bad value is a usage error (exit 2) before any work."""
from __future__ import annotations

import pytest

from matchcore.__main__ import main

NOT_PLAIN = ["1_0", "+5", " 5", "5 ", "\u0665", "nan", "1e", ".", "0x10", "Infinity"]


@pytest.mark.parametrize("value", NOT_PLAIN)
@pytest.mark.parametrize("argv, option", [
    (["bench", "standard", "--messages", "2000", "--quick", "--rate"], "--rate"),
    (["replay", "DAY", "--metrics-port", "0", "--metrics-hold"], "--metrics-hold"),
    (["subscribe", "nats://127.0.0.1:1", "--timeout"], "--timeout"),
    (["subscribe", "nats://127.0.0.1:1", "--follow", "--idle"], "--idle"),
])
def test_cli_float_option_not_plain_decimal_usage_error_exit_2(capsys, tmp_path, argv, option,
                                                               value):
    day = tmp_path / "day.itch"
    day.write_bytes(b"")
    argv = [str(day) if a == "DAY" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv + [value, "--no-progress"])
    out = capsys.readouterr()
    assert exc.value.code == 2 and out.out == "" and "Traceback" not in out.err
    assert f"argument {option}: invalid " in out.err and f" value: {value!r}" in out.err


@pytest.mark.parametrize("value, expected", [("5", 5.0), ("-2", -2.0), ("0.5", 0.5), (".5", 0.5),
                                             ("5.", 5.0), ("1e3", 1000.0), ("2.5E-1", 0.25)])
def test_cli_decimal_type_plain_syntax_taken(value, expected):
    from matchcore._cliutil import decimal

    assert decimal(value) == expected


@pytest.mark.parametrize("option", ["--rate", "--timeout", "--idle"])
def test_cli_float_option_inf_usage_error_where_not_documented(capsys, option):
    argv = (["bench", "standard", "--messages", "2000", "--quick"] if option == "--rate"
            else ["subscribe", "nats://127.0.0.1:1", "--follow"])
    with pytest.raises(SystemExit) as exc:
        main(argv + [option, "inf", "--no-progress"])
    assert exc.value.code == 2 and f"argument {option}: invalid " in capsys.readouterr().err


def test_cli_metrics_hold_inf_taken_as_documented():
    from matchcore._cliutil import decimal_or_inf

    assert decimal_or_inf("inf") == float("inf") and decimal_or_inf("30") == 30.0
    with pytest.raises(ValueError):
        decimal_or_inf(" inf")


@pytest.mark.parametrize("option", ["--rate", "--timeout", "--idle"])
def test_cli_float_option_beyond_float_range_usage_error_not_inf(capsys, option):
    # 1e400 is plain syntax that float() turns into inf: --timeout 1e400 waited without end
    argv = (["bench", "standard", "--messages", "2000", "--quick"] if option == "--rate"
            else ["subscribe", "nats://127.0.0.1:1", "--follow"])
    with pytest.raises(SystemExit) as exc:
        main(argv + [option, "1e400", "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {option}: 1e400 is outside the float range" in err


def test_cli_metrics_hold_bad_value_says_what_it_takes_not_a_function_name(capsys, tmp_path):
    # argparse names the type by its function's name: "invalid decimal_or_inf value: 'nan'"
    day = tmp_path / "day.itch"
    day.write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(day), "--metrics-port", "0", "--metrics-hold", "nan",
              "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "argument --metrics-hold: invalid decimal (or inf) value: 'nan'" in err, err
    assert "decimal_or_inf" not in err
