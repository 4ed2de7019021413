"""Connection guard of the HTTP server (uvicorn's httptools protocol with read deadlines).

uvicorn closes idle keep-alive connections but waits forever for the rest of a request whose headers or
body stop half-way, so a thousand idle half-sent requests exhaust its connection limit and every client,
``/health`` included, gets 503. :func:`guarded_protocol` returns a protocol class that

* closes a connection whose request headers have not all arrived ``header_timeout`` seconds after the
  connection (or the previous response), and one whose body pauses longer than ``body_timeout``;
* keeps at most ``max_idle`` connections waiting for their client: above, the one waiting longest is
  closed, so a new client is always read;
* answers 431 (JSON) and closes a connection whose request line and headers exceed ``max_header_bytes``, and
  one that sends more than ``max_header_bytes`` without a byte of body once its headers have arrived (chunk
  extensions, trailer fields after a chunked body: the parser kept every trailer field in memory);
* aborts a connection whose client stops reading its response: the unsent part stays in the HTTP process's
  memory (a /fields file of tens of MB per connection), so a response whose buffered part has not shrunk for
  ``body_timeout`` seconds is dropped;
* answers a request the HTTP parser refuses (two ``Content-Length``, ``Transfer-Encoding`` with ``Content-Length``,
  bare LF line ends, control characters...) with a JSON 400 naming the parser's reason, not uvicorn's plain text.
"""
from __future__ import annotations

import json
import logging
from collections import OrderedDict

log = logging.getLogger("structrom.api")


def _raw_error(status: int, reason: bytes, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response (JSON body, ``Connection: close``), written before or without the
    application."""
    body = json.dumps({"error": {"status": status, "code": code, "field": "headers", "message": message}}).encode()
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
            % (status, reason, len(body)) + body)


_TOO_LARGE = _raw_error(431, b"Request Header Fields Too Large", "headers_too_large",
                        "the request line and headers exceed the limit")
_TRAILING_TOO_LARGE = _raw_error(431, b"Request Header Fields Too Large", "headers_too_large",
                                 "chunk extensions or trailer fields exceed the limit (send the body in plain chunks, "
                                 "without trailer fields)")


class _Parser:
    """httptools' request parser keeping the reason of its refusal (``refusal``: llhttp's message, e.g.
    ``Duplicate Content-Length``); every other attribute is the parser's."""

    def __init__(self, parser) -> None:
        self._parser, self.refusal = parser, None

    def feed_data(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except Exception as exc:
            self.refusal = str(exc)
            raise

    def __getattr__(self, name):
        return getattr(self._parser, name)


def guarded_protocol(*, header_timeout: float, body_timeout: float, max_idle: int, max_header_bytes: int = 65536):
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency of the server
        log.warning("httptools is not installed: no header / body read deadlines")
        return "auto"
    waiting: OrderedDict = OrderedDict()  # connections waiting for their client, oldest first
    stats = {"closed_header": 0, "closed_body": 0, "closed_idle": 0, "closed_header_size": 0, "closed_write": 0}

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _timer = None
        # bytes received while the parser is in a request's head (from the end of the previous request's body,
        # not of its response: an early answer such as 413 comes while the body is still arriving)
        _header_bytes = 0
        _in_headers = True
        # bytes received after the headers since the last piece of body (chunk sizes and extensions, trailers)
        _trailing_bytes = 0

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.parser = _Parser(self.parser)

        def data_received(self, data: bytes) -> None:
            if self._in_headers:
                self._header_bytes += len(data)
            else:
                self._trailing_bytes += len(data)
            super().data_received(data)
            if self.transport.is_closing():
                return
            # still in the headers after this piece (a body in the same piece does not count)
            if self._in_headers and self._header_bytes > max_header_bytes:
                stats["closed_header_size"] += 1
                self.transport.write(_TOO_LARGE)
                self._close()
            elif not self._in_headers and self._trailing_bytes > max_header_bytes:
                stats["closed_header_size"] += 1
                if self.cycle is None or not self.cycle.response_started:
                    self.transport.write(_TRAILING_TOO_LARGE)
                self._close()

        def send_400_response(self, msg: str) -> None:
            why = getattr(self.parser, "refusal", None) or msg
            self.transport.write(_raw_error(
                400, b"Bad Request", "invalid_http", f"not a valid HTTP/1.1 request ({why}): send one Content-Length "
                "(or Transfer-Encoding: chunked alone), CRLF line ends, and no control or non-ASCII characters in the "
                "request line and headers"))
            self.transport.close()

        def _wait(self, timeout: float, reason: str) -> None:
            self._unwait()
            self._timer = self.loop.call_later(timeout, self._expire, reason)
            waiting[self] = None
            while len(waiting) > max_idle:
                oldest, _ = waiting.popitem(last=False)
                stats["closed_idle"] += 1
                oldest._close()

        def _unwait(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            waiting.pop(self, None)

        def _expire(self, reason: str) -> None:
            self._timer = None
            waiting.pop(self, None)
            stats[f"closed_{reason}"] += 1
            self._close()

        def _close(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._wait(header_timeout, "header")

        def connection_lost(self, exc) -> None:
            self._unwait()
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None
            super().connection_lost(exc)

        # -- responses the client does not read ------------------------------------------------------------
        _write_timer = None
        _write_left = 0  # bytes buffered at the last check

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._write_timer is None:
                self._arm_write()

        def _arm_write(self) -> None:
            self._write_left = self.transport.get_write_buffer_size()
            self._write_timer = self.loop.call_later(body_timeout, self._check_write)

        def _check_write(self) -> None:
            self._write_timer = None
            left = self.transport.get_write_buffer_size()
            if left == 0:
                return
            if left >= self._write_left:  # nothing read for body_timeout: free the buffer now (close would wait)
                stats["closed_write"] += 1
                self.transport.abort()
                return
            self._arm_write()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._timer is None:
                self._wait(header_timeout, "header")

        def on_headers_complete(self) -> None:
            self._in_headers, self._header_bytes, self._trailing_bytes = False, 0, 0
            super().on_headers_complete()
            self._wait(body_timeout, "body")

        def on_body(self, body: bytes) -> None:
            self._trailing_bytes = 0
            super().on_body(body)
            self._wait(body_timeout, "body")

        def on_message_complete(self) -> None:
            self._in_headers, self._header_bytes = True, 0  # what comes next is the next request's head
            super().on_message_complete()
            self._unwait()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._wait(header_timeout, "header")  # next request (uvicorn's keep-alive timer runs too)

    GuardedHttpToolsProtocol.stats = stats
    GuardedHttpToolsProtocol.waiting = waiting
    return GuardedHttpToolsProtocol
