"""The exit status of ``matchcore subscribe`` against a real ``nats-server -js``: a read that
left batches out of the books (malformed ones, ones out of sequence) is not a whole one."""
from __future__ import annotations

import numpy as np

from matchcore.__main__ import main
from matchcore.io.nats import KIND_TOB, WIRE_TOB, encode_batch
from nats_checks import names, server  # noqa: F401  (fixtures)


def test_cli_subscribe_malformed_or_out_of_sequence_batches_exit_1_one_error_line(server, names,
                                                                                 capsys):
    # malformed batches and batches out of sequence were left out of the books, and the
    # command exited 0 as after a whole read
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    rec = np.zeros(3, WIRE_TOB)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 0, rec), 3)
        assert pub.publish(f"{prefix}.tob.X", b"not a batch", 1)
        assert pub.publish(f"{prefix}.tob.Y", encode_batch(KIND_TOB, 2, 0, rec), 3)
        assert pub.publish(f"{prefix}.tob.Y", encode_batch(KIND_TOB, 3, 0, rec), 3)
        assert pub.publish(f"{prefix}.tob.Y", encode_batch(KIND_TOB, 4, 1, rec), 3)
        assert pub.publish(f"{prefix}.tob.Z", encode_batch(KIND_TOB, 5, 4, rec), 3)
    assert pub.stats["published"] == 6
    base = ["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix]
    code = main(base + ["--symbols", "X"])
    cap = capsys.readouterr()
    assert code == 1 and "malformed 1;" in cap.out
    assert cap.err.splitlines() == ["matchcore subscribe: error: 1 malformed batch: the books "
                                    "above lack those records"]
    code = main(base + ["--symbols", "Y"])
    cap = capsys.readouterr()
    assert code == 1 and "2 batches out of sequence" in cap.out
    assert cap.err.splitlines() == ["matchcore subscribe: error: 2 batches out of sequence "
                                    "left out: the books above lack those records"]
    # every count on one line, with the gaps
    code = main(base)
    cap = capsys.readouterr()
    err = cap.err.splitlines()
    assert code == 1 and len(err) == 1
    assert err[0] == ("matchcore subscribe: error: 1 sequence gap seen: 4 records missed, in 1 "
                      "subject; 1 malformed batch; 2 batches out of sequence left out: the books "
                      "above lack those records")


def test_cli_subscribe_print_batch_of_another_kind_than_its_subject_shown_malformed(
        server, names, capsys):
    # --print listed a top-of-book batch on an L2 subject as a batch received, while the
    # consumer left it out as malformed
    from matchcore.io.nats import KIND_L2, WIRE_L2, NatsPublisher

    stream, prefix = names
    level = np.zeros(1, WIRE_L2)
    level["side"] = b"B"
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.l2.X", encode_batch(KIND_TOB, 1, 0, np.zeros(2, WIRE_TOB)),
                           2)
        assert pub.publish(f"{prefix}.l2.X", encode_batch(KIND_L2, 1, 0, level), 1)
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--print"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0] == (f"{prefix}.l2.X: malformed batch (its header's kind tob is not its "
                      f"subject's l2)")
    assert out[1] == f"{prefix}.l2.X l2 locate 1 seq 0 +1"
    assert "malformed 1;" in out[2]


def test_cli_subscribe_print_redelivered_or_out_of_sequence_batch_shown_left_out(server, names,
                                                                                capsys):
    # --print listed a batch behind its subject's seq (a redelivery, or one out of sequence)
    # as a batch received, while the consumer left it out of the books
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    rec = np.zeros(3, WIRE_TOB)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        for loc, seq in ((1, 0), (1, 0), (2, 0), (1, 3)):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, loc, seq, rec), 3)
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--print"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[:4] == [
        f"{prefix}.tob.X tob locate 1 seq 0 +3 last: bid - x 0  ask - x 0",
        f"{prefix}.tob.X tob locate 1 seq 0 +3: left out (a redelivery: seq 0 is behind the "
        f"subject's next, 3)",
        f"{prefix}.tob.X tob locate 2 seq 0 +3: left out (out of sequence: seq 0 is behind "
        f"the subject's next, 3, and no batch of locate 2 was read from the subject)",
        f"{prefix}.tob.X tob locate 1 seq 3 +3 last: bid - x 0  ask - x 0"]
    assert out[4].startswith("received 2 batches: trade 0, tob 6, l2 0 records;")
    # a book the label selection leaves out is read for the sequence check only
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--print", "--symbols", "X@locate2"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split(": left out ")[1] for line in out[:4]] == [
        "(book X@locate1 not selected)",
        "(a redelivery: seq 0 is behind the subject's next, 3)",
        "(out of sequence: seq 0 is behind the subject's next, 3, and no batch of locate 2 "
        "was read from the subject)",
        "(book X@locate1 not selected)"]
