"""Integrations with other systems, each in its own module and each importing its optional
dependency only when used:

* :mod:`matchcore.io.metrics` -- Prometheus metrics of a replay or an embedded book / engine
  (``pip install 'matchcore[metrics]'``).
* :mod:`matchcore.io.nats` -- trades, top of book and L2 changes per symbol over NATS JetStream,
  publisher and consumer (``pip install 'matchcore[nats]'``).
"""
