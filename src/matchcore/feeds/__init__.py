"""Input formats beside ITCH 5.0 that feed the same market-by-order books and sinks.

* :mod:`matchcore.feeds.dbn` -- Databento DBN market-by-order files (``.dbn``, ``.dbn.zst``);
  needs the ``dbn`` extra (``pip install 'matchcore[dbn]'``), imported only when used.
"""
