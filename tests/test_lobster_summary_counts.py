"""LobsterResult.summary() counts in words: one of a thing is said in the singular."""
from __future__ import annotations

from matchcore.lobster import replay_lobster


def test_lobster_summary_one_message_level_and_trade_in_the_singular(tmp_path):
    # one hidden execution (type 5: the book is unchanged, a trade is recorded) over a book of
    # one bid level, verified at one level: "1 LOBSTER messages", "seed: 1 levels",
    # "1 trades" and "top 1 levels" were printed, where the other replay summaries say "1 book"
    msg = tmp_path / "X_message_1.csv"
    ob = tmp_path / "X_orderbook_1.csv"
    msg.write_text("34200.5,5,0,100,1000000,1\n")
    ob.write_text("9999999999,0,1000000,300\n")
    text = replay_lobster(msg, ob, verify=True).summary()
    lines = text.splitlines()
    assert lines[0].startswith("1 LOBSTER message in "), text
    assert lines[1].startswith("seed: 1 level; "), text
    assert "; 1 trade; state trading" in lines[1], text
    assert lines[2].startswith("verify (top 1 level, both sides): "), text


def test_lobster_summary_counts_other_than_one_stay_plural(tmp_path):
    msg = tmp_path / "X_message_2.csv"
    ob = tmp_path / "X_orderbook_2.csv"
    msg.write_text("34200.5,5,0,100,1000000,1\n34200.6,5,0,100,1000000,1\n")
    ob.write_text("1000100,200,1000000,300,9999999999,0,999900,50\n"
                  "1000100,200,1000000,300,9999999999,0,999900,50\n")
    text = replay_lobster(msg, ob, verify=True).summary()
    lines = text.splitlines()
    assert lines[0].startswith("2 LOBSTER messages in "), text
    assert lines[1].startswith("seed: 3 levels; "), text
    assert "; 2 trades; state trading" in lines[1], text
    assert lines[2].startswith("verify (top 2 levels, both sides): "), text
