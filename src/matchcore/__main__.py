"""Command line: ``matchcore SUBCOMMAND ...`` (also ``python -m matchcore``).

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``; the
module is imported only when its subcommand runs, so ``matchcore --help`` stays fast.

Interruption and a closed output are handled here, once for every subcommand (the exit statuses
are in the README's "Command line" section): Ctrl-C (SIGINT) and SIGTERM end the command with
one line on stderr and status 128 + the signal number, after the ``finally`` blocks and ``with``
exits of the command ran (SIGTERM is raised as :class:`Terminated`, a ``KeyboardInterrupt``, so
cleanup written for Ctrl-C covers it too); a reader that goes away (``matchcore ... | head``)
ends the command quietly with status 141 (128 + SIGPIPE), as a tool killed by SIGPIPE would.
Any other broken pipe (an output FIFO, a socket, a subprocess) is an error: one line, status 1.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import select
import signal
import sys

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) received by a command: raised in the main thread like Ctrl-C's
    ``KeyboardInterrupt`` so that the command's cleanup runs, then turned into exit status
    128 + ``signum`` by :func:`main`."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# While the handlers are put back, the command's own handler holds a signal instead of raising
# it there (which would leave the handlers after it installed): it is raised once all are back.
_restoring = False
_held: list[int] = []


def _raise_terminated(signum, frame):
    if _restoring:
        _held.append(signum)
        return
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_as_exceptions():
    """SIGTERM and SIGHUP raise :class:`Terminated` while the command runs (only where their
    disposition is the default: ``nohup`` and the like keep theirs), and only in the main
    thread, where Python can install handlers. Afterwards every handler is put back, whatever
    arrives meanwhile (see :func:`_restore_handlers`)."""
    global _restoring
    saved = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                if signal.getsignal(sig) == signal.SIG_DFL:
                    saved[sig] = signal.signal(sig, _raise_terminated)
            except ValueError:          # not the main thread
                break
        yield
    finally:
        _restoring = True               # (before any call: no handler can raise in between)
        try:
            _restore_handlers(saved)
        finally:
            _restoring = False
        if _held:
            signum = _held[0]
            _held.clear()
            raise Terminated(signum)


def _restore_handlers(saved: dict) -> None:
    """Put back the handlers ``_signals_as_exceptions`` replaced, all of them. A SIGTERM or
    SIGHUP arriving meanwhile is held by the command's handler while it is still installed
    (raised by the caller once all are back: the command is reported interrupted) and takes its
    default action once its own is back; a Ctrl-C (``KeyboardInterrupt``) is raised after."""
    caught = None
    for sig, old in saved.items():
        while True:
            try:
                signal.signal(sig, old)
                break
            except KeyboardInterrupt as e:      # raised before the call took effect
                caught = caught or e
    if caught is not None:
        raise caught


# Whether _sigint_ends_at_once set SIGINT to its default action, to be put back by main().
_sigint_default = False


def _sigint_ends_at_once() -> None:
    """While a command that was interrupted reports it, a further Ctrl-C ends the process at
    once, as SIGINT's default action does (status 130 to the shell, no traceback, nothing left
    to clean up: the command's cleanup has run), where Python's handler raised it in the
    middle of the report. Only where that handler is Python's own: an ignored SIGINT
    (``nohup``, a background job) stays ignored, another handler is the caller's. A pending
    SIGINT is raised as ``KeyboardInterrupt`` before the change (``signal.signal`` runs pending
    handlers first), and none can be raised after it."""
    global _sigint_default
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            _sigint_default = True      # (first: no exception can come between the two then)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    except ValueError:                  # not the main thread: nothing changed, none to put back
        _sigint_default = False


def _sigint_handler_back() -> None:
    """Python's SIGINT handler back after :func:`_sigint_ends_at_once`, for a caller of
    :func:`main` that goes on (a SIGINT meanwhile has ended the process)."""
    global _sigint_default
    if _sigint_default:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _sigint_default = False


def _stderr_line(text: str) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(text, file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """After EPIPE on stdout: point the descriptor at /dev/null so that the flush at exit
    does not fail again ("Exception ignored ... BrokenPipeError")."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("matchcore.demo", "push a generated order flow through the book: fills and latency"),
}


def _register_optional() -> None:
    # Subcommands whose modules may not be present in every build of the package.
    for name, module, help_ in (
        ("replay", "matchcore.cli_replay", "replay tick files (ITCH 5.0, DBN MBO, LOBSTER, native) through the book"),
        ("gen-itch", "matchcore.cli_replay", "write a seeded, realistic ITCH 5.0 file"),
        ("book", "matchcore.cli_replay", "print (or plot) the book of one symbol at a moment"),
        ("bench", "matchcore.cli_bench", "latency and throughput benchmarks measured in compiled code"),
        ("journal", "matchcore.cli_durability", "inspect an engine journal (segments, damage) or its trades"),
        ("recover", "matchcore.cli_durability", "rebuild an engine from its journal directory"),
        ("subscribe", "matchcore.cli_subscribe",
         "read market data published to NATS JetStream: top of book, L2, trades per symbol"),
    ):
        if importlib.util.find_spec(module) is not None:
            SUBCOMMANDS[name] = (module, help_)


class _NamedStdout:
    """``sys.stdout`` while a command runs: a write or flush that fails (a full disk, a file
    size limit) raises an ``OSError`` naming stdout, as an output sent to '-' names its
    option ("[Errno 28] No space left on device" said neither). Anything else is the
    stream's own. ``failed``: the first such error, also when its caller ignored it
    (argparse ignores one writing the help), so that the command does not end with 0."""

    def __init__(self, stream):
        self._stream = stream
        self.failed = None

    # (a try around the call, not a context manager: a CSV to stdout writes once a row)
    def write(self, text):
        try:
            try:
                return self._stream.write(text)
            except UnicodeEncodeError:
                # a character stdout's encoding cannot hold (a latin-1 name under an ASCII
                # locale, a file name of undecodable bytes on a strict UTF-8 stdout) escaped,
                # as stderr writes it: the report failed in the codec's words after the whole
                # work, the outputs after that line never written. (The encoder refuses the
                # whole text before any of it is written.)
                return self._stream.write(escaped_for(self._stream, text))
        except OSError as e:
            raise self._named(e)

    def flush(self):
        try:
            return self._stream.flush()
        except OSError as e:
            raise self._named(e)

    def _named(self, e):
        from matchcore._cliutil import output_error

        err = output_error("stdout", None, e)
        if err is not e:                # (a broken pipe passes as it is, for main())
            self.failed = self.failed or err
        return err

    def __getattr__(self, name):
        return getattr(self._stream, name)


def escaped_for(stream, text: str) -> str:
    """``text`` with each character the text ``stream``'s encoding cannot hold written as
    Python's ``backslashreplace`` writes it (``\\xc9``, ``\\udcff``). O(len(text))."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)


def _stdout_failed():
    """The error of a write to stdout that failed while the command ran (a full disk), even
    if whoever wrote ignored it; else None."""
    return sys.stdout.failed if isinstance(sys.stdout, _NamedStdout) else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    stdout, stderr = sys.stdout, sys.stderr
    if stdout is not None:
        sys.stdout = _NamedStdout(stdout)
    devnull = None
    if stderr is None:
        # stderr closed (`2>&-`): Python's sys.stderr is None. The progress bar's check for a
        # terminal raised AttributeError (replay, book, gen-itch, bench did nothing, exit 1,
        # their traceback written nowhere), and print(file=None) writes to stdout: gen-itch -
        # left its summary after the day's data, errors went into the output. What goes to
        # stderr is now lost, as a write to a closed descriptor is.
        sys.stderr = devnull = open(os.devnull, "w")
    try:
        return _main_named(argv)
    finally:
        if isinstance(sys.stdout, _NamedStdout):
            sys.stdout = stdout
        if devnull is not None:
            sys.stderr = stderr
            devnull.close()
        _sigint_handler_back()


def _main_named(argv: list[str]) -> int:
    who = f"matchcore {argv[0]}" if argv and not argv[0].startswith("-") else "matchcore"
    try:
        with _signals_as_exceptions():
            try:
                code = _main(argv)
            except SystemExit as e:     # argparse: --help, a usage error
                _flush_stdout()
                if e.code in (0, None) and _stdout_failed() is not None:
                    raise _stdout_failed() from None    # the help lost: not a success
                raise
            if code != 0 and _stdout_failed() is not None:
                # the command has reported its write to stdout that failed (an output sent to
                # '-' on a full disk); a buffered stdout still holds those bytes, and their
                # flush here failed again: a second error line, "stdout: cannot be written"
                _final_flush()
                return code
            _flush_stdout()             # a closed pipe shows here, not at interpreter exit
            if code == 0 and _stdout_failed() is not None:
                raise _stdout_failed()  # a write of the output failed, and was ignored
            return code
    except KeyboardInterrupt as e:
        # first, before any other call: Ctrl-C pressed twice raised the second here, where
        # nothing catches it, and the command ended in a traceback after its one line
        while True:
            try:
                _sigint_ends_at_once()
                break
            except KeyboardInterrupt:   # the second, pending already: taken, nothing changed
                pass
        signum = e.signum if isinstance(e, Terminated) else signal.SIGINT
        lost = _final_flush()           # the partial summary, before the line on stderr
        _stderr_line(f"{who}: interrupted by {signal.Signals(signum).name}")
        _say_lost(who, lost)
        return 128 + signum
    except MemoryError as e:
        # a size the machine cannot hold (bench or demo --messages 10**12): one line, as any
        # other error, not a traceback
        lost = _final_flush()
        _stderr_line(f"{who}: error: out of memory" + (f": {e}" if str(e) else ""))
        _say_lost(who, lost)
        return 1
    except BrokenPipeError as e:
        if _stdout_reader_gone():
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        # another pipe broke (an output FIFO, a socket, a subprocess): a real error
        lost = _final_flush()
        where = f" writing {e.filename}" if e.filename else ""
        _stderr_line(f"{who}: error: broken pipe{where}: the reader of an output other than "
                     f"stdout (a FIFO, a socket, a subprocess) went away")
        _say_lost(who, lost)
        return 1
    except OSError as e:
        # an output that cannot be written (stdout on a full disk: > /dev/full) or any other
        # I/O error a command did not report itself: one line, as the commands' own errors
        try:
            _flush_stdout()
        except (OSError, ValueError):
            _silence_stdout()           # or the flush at exit fails again, with a traceback
        _stderr_line(f"{who}: error: {e}")
        return 1


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone: the one broken pipe that
    ends a command quietly with 141. Asked after a BrokenPipeError, which any stream raises."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
    except (AttributeError, OSError, ValueError):
        return not hasattr(select, "poll")      # no way to ask: stdout, as before
    poller.register(fd, select.POLLOUT)
    # a pipe's write end polls POLLERR once it has no reader left; a socket's, POLLHUP too
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


def _final_flush() -> OSError | None:
    """Flush stdout at the end of a command that was interrupted or failed: the error of a
    flush that failed (a full disk), else None. stdout then goes to /dev/null, or the flush at
    interpreter exit failed again ("Exception ignored ... OSError", exit status 120 in place
    of the command's). A reader gone away (a broken pipe) is not an error here."""
    try:
        _flush_stdout()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as e:
        _silence_stdout()
        return e
    except ValueError:                  # stdout closed by the command: nothing held
        pass
    return None


def _say_lost(who: str, lost: OSError | None) -> None:
    """One line on stderr for the stdout output :func:`_final_flush` could not write."""
    if lost is not None:
        _stderr_line(f"{who}: error: {lost}")


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _main(argv: list[str]) -> int:
    _register_optional()
    # allow_abbrev=False everywhere: only an option's full name is taken (--no-prog was
    # --no-progress, and a later option of the same prefix would change what it means)
    parser = argparse.ArgumentParser(
        # ASCII: the help is printed in the locale's encoding, which may be ASCII alone
        # (LC_ALL=C), and an ellipsis (U+2026) there ended `matchcore --help` in a
        # UnicodeEncodeError traceback
        prog="matchcore", description="matchcore COMMAND ... (also python -m matchcore COMMAND "
                                      "...); matchcore COMMAND --help lists its options",
        allow_abbrev=False)
    # required: no command is a usage error (stderr, exit 2), not the help on stdout
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False, allow_abbrev=False)
    # Only the subcommand's name is parsed here; its module defines and parses the rest, so
    # that `matchcore replay --help` shows the replay options.
    if argv[:1] == ["--"]:
        argv = argv[1:]                 # the end of options, as argparse takes it
        if argv and argv[0] not in SUBCOMMANDS:
            # (argparse's own words: given "--" first it names "--" as the invalid choice)
            parser.error(f"argument COMMAND: invalid choice: {argv[0]!r} (choose from "
                         f"{', '.join(map(repr, SUBCOMMANDS))})")
    if not argv or argv[0] in ("-h", "--help"):
        parser.parse_args(argv[:1])     # exits: --help, or a usage error (no command)
        return 2
    if argv[0].startswith("-") and argv[0] != "-":
        # argparse checks the required COMMAND first and said it was missing, also when one
        # followed (`matchcore --no-progress replay ...`): the option is what is wrong
        command = next((a for a in argv[1:] if a in SUBCOMMANDS), None)
        where = f" (a command's options go after it: matchcore {command} {argv[0]} ...)" \
            if command is not None else ""
        parser.error(f"unrecognized arguments: {argv[0]}{where}")
    command = argv[0]
    if command not in SUBCOMMANDS:
        parser.parse_args(argv[:1])  # exits with argparse's "invalid choice" message
    module, help_ = SUBCOMMANDS[command]
    mod = importlib.import_module(module)
    sub_parser = argparse.ArgumentParser(prog=f"matchcore {command}", description=help_,
                                         allow_abbrev=False)
    mod.add_parser(sub_parser, command)
    sub_args = sub_parser.parse_args(argv[1:])
    sub_args.command = command
    from matchcore._cliutil import (repeated_input, shared_output, stdout_file_outputs,
                                    stdout_refused)

    clash = (stdout_refused(command, sub_args) or shared_output(command, sub_args)
             or repeated_input(command, sub_args))
    if clash is not None:
        sub_parser.error(clash)         # a usage error (exit status 2), before any work
    stdout_file_outputs(command, sub_args)
    if sys.stdout is None:
        # stdout closed (`>&-`): an output sent to '-' would be written nowhere, refused before
        # any work as the commands refuse an output path they cannot write
        # (gen-itch's OUT is a positional argument: '-' writes the day to stdout)
        for option in ("dump_book", "json", "csv") + (("out",) if command == "gen-itch" else ()):
            if getattr(sub_args, option, None) == "-":
                name = option if command == "gen-itch" else "--" + option.replace("_", "-")
                _stderr_line(f"matchcore {command}: error: {name} -: "
                             f"stdout is closed, nothing can be written to it")
                return 1
    return int(mod.run(sub_args) or 0)


if __name__ == "__main__":
    sys.exit(main())
