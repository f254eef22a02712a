"""Running replays on more than one process or machine.

* :mod:`matchcore.cluster.dask` -- many tick files (or the books of one large file) replayed
  on a Dask cluster, results merged; needs the ``dask`` extra
  (``pip install 'matchcore[dask]'``), imported only when used.
"""
