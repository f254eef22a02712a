"""Connecting to NATS: nats-py imported when first needed, URLs printed without their
credentials, the JetStream stream checks the publisher and the consumer share, and the errors
a read retries."""
from __future__ import annotations

import asyncio
import re


def _nats():
    try:
        import nats
    except ImportError:
        raise ImportError("matchcore.io.nats needs nats-py: pip install 'matchcore[nats]'") from None
    return nats


def _check_url(url) -> str:
    # before anything connects: None or a port number failed in the client ("argument of type
    # 'NoneType' is not iterable"), named neither the setting nor what it takes
    if not isinstance(url, str):
        raise TypeError(f"url must be a str (nats://HOST:PORT), got {type(url).__name__} "
                        f"{url!r}")
    # a scheme the client does not take: http://HOST:PORT was read as nats://http:..., and
    # failed once connecting with "Name or service not known"
    m = _SCHEME.match(url)
    if m and m.group(1) not in _SCHEMES:
        raise ValueError(f"url '{display_url(url)}' is not a NATS URL: the NATS client takes "
                         f"the schemes {', '.join(s + '://' for s in _SCHEMES[:-1])} or "
                         f"{_SCHEMES[-1]}:// (HOST:PORT alone is nats://), not "
                         f"{m.group(1)}://")
    # what the client makes of it when it connects: an empty URL, one without a host or
    # with a port that is not a number failed there ("nats: invalid hostname in connect
    # url", the client's own error from consume(), "cannot connect" from the publisher),
    # though no connection was ever tried
    why = _unparsable(url)
    if why is not None:
        raise ValueError(f"url '{display_url(url)}' is not a NATS URL: {why} "
                         f"(nats://HOST:PORT)")
    return url


def _unparsable(url: str):
    # as the client normalises a server URL (a scheme-less one is nats://, a port-less one
    # :4222) before urlparse: why it would refuse it, else None
    from urllib.parse import urlparse

    if any(f"{s}://" in url for s in _SCHEMES):
        full = url
    else:
        full = f"nats://{url}" if ":" in url else f"nats://{url}:4222"
    try:
        uri = urlparse(full)
    except ValueError:                 # an unclosed [ of an IPv6 address
        return "it does not parse as a URL"
    # (urllib's own words quote what it took for the port: with a '#' in a password, the
    # password, which display_url() leaves unmasked there)
    try:
        uri.port                       # a ValueError when it is not a number in 0..65535
    except ValueError:
        return "its port is not a number in 0..65535"
    if uri.hostname is None or uri.hostname == "none":
        return "it has no host"
    return None


# the schemes nats-py connects with (nats and tls over TCP, ws and wss over WebSocket), in
# lower case, as it compares them
_SCHEMES = ("nats", "tls", "ws", "wss")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://")


def display_url(url: str) -> str:
    """``url`` as it may be printed: a password or token in it replaced by ``***`` (messages
    and logs are no place for credentials), characters that are not printable escaped as the
    command line shows names (:func:`matchcore._cliutil.shown_name`). O(len(url)).

    >>> display_url("nats://u:pw@host:4222"), display_url("nats://token@host:4222")
    ('nats://u:***@host:4222', 'nats://***@host:4222')
    """
    # NATS URLs have no path: up to the last '@' before any '?' or '#' is user information, a
    # '/' in it or not (the mask stopped at the first '/', and at the first '@' before that)
    from matchcore._cliutil import shown_name

    m = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*://)?([^?#]*)@", str(url))
    if not m:
        return shown_name(str(url))
    user = m.group(2)
    hidden = f"{user.split(':', 1)[0]}:***" if ":" in user else "***"
    return shown_name(f"{m.group(1) or ''}{hidden}@{str(url)[m.end():]}")


# what JetStream takes as a stream name: not empty, none of the characters the client refuses
# ('.', '*', '>', '/', '\\', whitespace) nor control characters (which the broker's JSON
# answers cannot carry), at most 255 bytes of UTF-8 (the broker's limit)
_BAD_STREAM_CHAR = re.compile(r"[.*>/\\\s\x00-\x1f\x7f-\x9f]")
_STREAM_NAME_MAX = 255


def _check_stream_name(stream) -> str:
    """``stream`` when JetStream takes it as a stream name; ``TypeError`` when it is not a
    str, ``ValueError`` otherwise, before anything connects (the client refused such a name
    only once connected, in its own words, and the broker one that is too long).
    O(len(stream))."""
    if not isinstance(stream, str):
        raise TypeError(f"stream name must be a str, got {type(stream).__name__} {stream!r}")
    try:
        size = len(stream.encode())
    except UnicodeEncodeError:           # a lone surrogate: no UTF-8 to send
        size = None
    if not stream or _BAD_STREAM_CHAR.search(stream) or size is None \
            or size > _STREAM_NAME_MAX:
        raise ValueError(f"stream name {stream!r} is not a JetStream stream name: 1 to "
                         f"{_STREAM_NAME_MAX} bytes (UTF-8), without whitespace, control "
                         f"characters, '.', '*', '>', '/' or '\\'")
    return stream


def _shown(name: str) -> str:
    # a stream name in a message: ours or the broker's, escaped as the command line shows names
    from matchcore._cliutil import shown_name

    return shown_name(name)


def _huge_shown(value) -> str:
    """A number too large for a float (an int such as 10**400), as a refusal shows it: its
    repr, cut to its first 20 characters when longer than 24."""
    shown = repr(value)
    return shown if len(shown) <= 24 else f"{shown[:20]}..."


class StreamSetupError(RuntimeError):
    """The broker answered but the stream cannot take the publisher's subjects (an existing
    stream of that name with other subjects, or a refused creation)."""


def _no_jetstream(url: str) -> StreamSetupError:
    # The JetStream API unanswered by a broker that answers: the client's own words were
    # "ServiceUnavailableError: code=None err_code=None description='None'"
    return StreamSetupError(f"the broker at {display_url(url)} has no JetStream (nats-server "
                            f"without -js, or JetStream not enabled for this account): no "
                            f"stream can be read or created")


def _no_responders(e) -> bool:
    """Whether ``e`` is the client's ``ServiceUnavailableError`` for a JetStream request that
    nothing answered (a 503 "no responders": a broker without JetStream, or one whose
    JetStream is not up yet), which it words "code=None err_code=None description='None'"
    (a 503 the JetStream API sends itself carries its code)."""
    from nats.js.errors import ServiceUnavailableError

    return isinstance(e, ServiceUnavailableError) and getattr(e, "code", None) is None


# How nats-py words a broker's refusal of a subject to this connection's user (passed to its
# error callback); the refused request itself is never answered and times out
_PERMISSIONS = "permissions violation"


def _refused(reported) -> str | None:
    """The last permission refusal among what the client reported (its errors or their
    texts), else None."""
    for r in reversed(list(reported)):
        if r is not None and _PERMISSIONS in str(r).lower():
            return str(r)
    return None


def _not_permitted(stream: str, url: str, refusal: str) -> StreamSetupError:
    # A JetStream request the broker refused to pass on for this user: "TimeoutError: nats:
    # timeout" alone read as a broker that did not answer, while it had said why
    return StreamSetupError(f"stream {_shown(stream)} at {display_url(url)}: the broker "
                            f"refused this connection's user a JetStream request, which got no "
                            f"answer ({refusal}): its permissions do not allow it")


def _covers(pattern: str, subject: str) -> bool:
    """Whether the NATS subject filter ``pattern`` matches every subject that ``subject`` (which
    may hold ``*`` / ``>`` wildcards) matches.

    >>> _covers("mc.>", "mc.tob.*"), _covers("*.tob.*", "mc.tob.*"), _covers("mc.l2.*", "mc.l2.X")
    (True, True, True)
    >>> _covers("mc.tob.AAPL", "mc.tob.*"), _covers("mc.*", "mc.tob.*"), _covers(">", "mc.>")
    (False, False, True)
    """
    p, t = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return i < len(t)
        if i >= len(t) or t[i] == ">" or (tok != "*" and tok != t[i]):
            return False
    return len(p) == len(t)


def _overlaps(a: str, b: str) -> bool:
    """Whether the NATS subject filters ``a`` and ``b`` match at least one subject in common.

    >>> _overlaps("mc.*.*", "mc.tob.>"), _overlaps("mc.>", "mc.l2.X"), _overlaps("*.tob.*", "x.*.Y")
    (True, True, True)
    >>> _overlaps("mc.*.*", "md.>"), _overlaps("mc.l2.*", "mc.tob.*"), _overlaps("mc.*.*", "mc.*")
    (False, False, False)
    """
    x, y = a.split("."), b.split(".")
    for s, t in zip(x, y):
        if s == ">" or t == ">":
            return True
        if s != t and "*" not in (s, t):
            return False
    return len(x) == len(y)


def _check_stream_holds(config, stream: str, url: str, subjects) -> None:
    # A stream whose subjects no filter overlaps can never deliver anything: the read found
    # nothing and ended as from an empty stream, exit 0 (a forgotten --subject-prefix). A
    # stream fed by others (mirror, sources) or transforming subjects has no say here.
    have = list(getattr(config, "subjects", None) or [])
    if not have or getattr(config, "mirror", None) or getattr(config, "sources", None) \
            or getattr(config, "subject_transform", None):
        return
    if not any(_overlaps(p, s) for p in have for s in subjects):
        raise StreamSetupError(
            f"stream {_shown(stream)} at {display_url(url)} holds the subjects {have}, none of "
            f"which {', '.join(map(_shown, subjects))} can match: nothing could be read (is the subject prefix "
            f"(--subject-prefix) or the stream (--stream) the publisher's?)")


def _transient_errors():
    from nats.errors import (ConnectionReconnectingError, NoRespondersError, StaleConnectionError,
                             TimeoutError as NatsTimeout, UnexpectedEOF)
    from nats.js.errors import NotFoundError, ServiceUnavailableError, ServerError

    return (ServiceUnavailableError, NotFoundError, ServerError, NoRespondersError,
            ConnectionReconnectingError, StaleConnectionError, UnexpectedEOF, NatsTimeout,
            asyncio.TimeoutError)
