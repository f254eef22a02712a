"""Streaming gzip decompression shared by the feed readers (ITCH, DBN) and the format
detection: every byte a cut stream holds is handed over, and the cut is reported."""
from __future__ import annotations

import io
import zlib

from matchcore._magic import GZIP_MAGIC


class Inflater(io.RawIOBase):
    """The decompressed bytes of a gzip stream read from ``raw`` (members one after another,
    zero padding between them skipped, as :class:`gzip.GzipFile` reads them), ``readinto`` a
    caller's buffer.

    A stream that ends before its end marker hands over every byte it holds and sets ``cut``.
    (``GzipFile.readinto`` raises there and drops what that call had decompressed; getting
    those bytes back meant reading the file again by its path, which a pipe cannot do and a
    FIFO blocks on.) Bytes after a complete member that start no member (not the gzip magic:
    gzip(1)'s "trailing garbage") end the stream there, after every byte before them is
    handed over; ``trailing`` is then their offset in the compressed input (else None), for
    the caller to report. ``compressed`` counts the bytes read from ``raw``, a pipe included;
    ``decompressed`` the bytes handed over.

    A raw stream (``io.BufferedReader(Inflater(raw))`` reads it); it does not close ``raw``.
    A damaged stream raises ``zlib.error``."""

    def __init__(self, raw, head: bytes = b"", live: bool = False):
        super().__init__()
        self.raw = raw
        # live (a pipe, FIFO or socket): return what the input at hand inflates to rather than
        # wait for more of a stream that may be slow
        self.live = live
        self.compressed = len(head)
        self.decompressed = 0                # bytes handed over
        self.cut = False
        self._d = zlib.decompressobj(31)     # 31: a gzip header and trailer (CRC, size checked)
        self._in = head                      # compressed bytes not yet given to _d
        self._member = False                 # some bytes of the current member given to _d
        self._members = 0                    # complete members read
        self._raw_end = False
        self.trailing = None

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:
        n, want = 0, len(view)
        while n < want:
            if not self._in and not self._raw_end:
                if self.live and n:
                    break
                self._read()
            if not self._member:
                self._in = self._in.lstrip(b"\0")
                if not self._in:
                    if self._raw_end:
                        break                # the end, between members: complete
                    continue
                if self._members and self._in[:2] != GZIP_MAGIC:
                    if self._in == GZIP_MAGIC[:1] and not self._raw_end:
                        if self.live and n:
                            break
                        self._read()         # a magic split between two reads
                        continue
                    self.trailing = self.compressed - len(self._in)
                    self._in = b""
                    self._raw_end = True     # read no further
                    break
                self._member = True
            out = self._d.decompress(self._in, want - n)
            view[n:n + len(out)] = out
            n += len(out)
            if self._d.eof:
                self._in = self._d.unused_data
                self._d = zlib.decompressobj(31)
                self._member = False
                self._members += 1
                continue
            self._in = self._d.unconsumed_tail
            if not out and not self._in and self._raw_end:
                self.cut = True              # inside a member, no input left
                break
        self.decompressed += n
        return n

    def _read(self) -> None:
        got = self.raw.read1(1 << 16) if self.live else self.raw.read(1 << 16)
        self.compressed += len(got)
        self._raw_end = not got
        self._in = self._in + got if self._in else got
