"""Misuses of the API that the stubs must make type errors (tests/test_typing.py runs mypy on
this file). Each line with a ``# E: code`` comment must give exactly that mypy error code, and
no other line may give one. Never run."""
import numpy as np

import matchcore as mc
import matchcore.itch as itch

book = mc.OrderBook()
book.submit("1", 0, 100, 5)                       # E: arg-type
book.submit(1, mc.Side.BUY, 100.5, 5)             # E: arg-type
book.cancel(1, 0)                                 # E: call-arg
book.modify(1, 5, ts=3)                           # E: call-arg
mc.OrderBook(mc.STP.NONE, False)                  # E: call-arg
executed: str = book.submit(1, 0, 100, 5)         # E: assignment
price = book.best_bid()[0]                        # E: index
book.process([(0, 1, 100, 5, 0, 0, 0, 0, 0, 0)])  # E: arg-type
book.depth_into([[0, 0]], np.zeros((1, 2), np.int64))  # E: arg-type
book.level(0)                                     # E: call-arg
book.check_invariants(True)                       # E: call-arg
kept: bytes = book.events()                       # E: assignment
mc.Orderbook()                                    # E: attr-defined

eng = mc.Engine()
eng.add_symbol(1, "AAA", tickk=5)                 # E: call-arg
eng.submit(1, 0, 100, 5)                          # E: call-arg
eng.cancel(1, 1)                                  # E: call-arg
side: int = eng.get(1)[1]                         # E: index
mc.Engine.recover("state/", fsink="batch")        # E: call-arg
eng.check_invariants(True)                        # E: call-arg

r = itch.Replayer(snapshot_every="10")            # E: arg-type
r.feed("text")                                    # E: arg-type
