"""Coverage-guided fuzzing (atheris / libFuzzer) of everything that reads untrusted bytes.

* ``targets.py`` -- the registry ``TARGETS``: name -> :class:`targets.Target` (the function that
  takes one input, the builder of its seed corpus, its contract).
* ``python -m tests.fuzz`` (``__main__.py``) -- the runner: a short or long libFuzzer run of one
  target, every target, or a replay of saved inputs without atheris.
* ``tests/test_fuzz.py`` -- the default test run fuzzes each target for a few seconds in a
  subprocess; ``MATCHCORE_SOAK=1`` runs each for minutes.

Adding a target
---------------

1. In ``targets.py``, write ``def fuzz_NAME(data: bytes) -> None``: feed ``data`` to the reader,
   catch only the exception types its contract allows (``except JournalError: return``), and
   check with ``assert`` (or :func:`targets.violated`) what must hold after a success: invariants,
   a round trip, an unchanged state after a refusal. Any other exception is a finding.
2. Write ``def seeds_NAME() -> list[bytes]``: a few small *valid* inputs (a few KB at most; the
   fuzzer mutates them), built with the project's own writers, never copied files.
3. Register both: ``register("NAME", fuzz_NAME, seeds_NAME, contract="...", max_len=4096)``.

That is all: ``python -m tests.fuzz NAME --seconds 600`` fuzzes it and ``tests/test_fuzz.py``
picks it up (short run, seeds pass the contract) without an edit.
"""
