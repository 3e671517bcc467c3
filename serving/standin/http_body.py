"""The HTTP layer the stand-in's REST API and the logging proxy share: a threaded server that
holds many concurrent connections, and a request-body reader with TF Serving's limits.

TF Serving's REST server (util/net_http/server/internal/evhttp_server.cc over libevent's
evhttp, started by model_servers/http_server.cc) reads a body of any Content-Length or chunked
encoding, un-gzips a body whose Content-Encoding names gzip
(util/net_http/server/internal/evhttp_request.cc, auto_uncompress_input on by default) up to
Zlib::kMaxUncompressedBytes, 100 MB (util/net_http/compression/gzip_zlib.h), and reads a body
it cannot un-gzip as empty, which ParseJson (util/json_tensor.cc) answers with "JSON Parse
error: The document is empty". A Content-Length libevent cannot read is a 400.

What is the stand-in's own: evhttp sets no limit on a plain body, but a Python server that
buffered any size would be the first to fall over, so a plain or chunked body over
MAX_BODY_BYTES (the same 100 MB) is refused with evhttp's answer for a body over its
max_body_size, 413 Request Entity Too Large, and the connection is closed.
"""

from __future__ import annotations

import socket
import time
import zlib
from http.server import ThreadingHTTPServer

MAX_BODY_BYTES = 100 * 1024 * 1024  # gzip_zlib.h Zlib::kMaxUncompressedBytes
# socketserver listens with a backlog of 5: 20 clients connecting at once overflowed it and
# some got connection resets. The kernel caps this at net.core.somaxconn.
LISTEN_BACKLOG = 1024
# A connection idle (or a body stalled) this long is closed, so a slow client cannot hold a
# thread for ever.
IDLE_SECONDS = 60.0
LINGER_SECONDS = 2.0


class BodyError(Exception):
    """A body that is not read: the HTTP status and reason the server answers."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status} {reason}")
        self.status, self.reason = status, reason


class RestHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer (a thread per connection, HTTP/1.1 keep-alive when the handler says
    so) with a listen backlog for many clients connecting at once."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def _read_exactly(rfile, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) != size:
        raise BodyError(400, "Bad Request")  # the client closed the connection mid-body
    return data


def _chunked(rfile, limit: int) -> bytes:
    parts, total = [], 0
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyError(400, "Bad Request") from None
        if size < 0:
            raise BodyError(400, "Bad Request")
        if size == 0:
            while rfile.readline(1024).strip():  # trailers up to the empty line
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise BodyError(413, "Request Entity Too Large")
        parts.append(_read_exactly(rfile, size))
        _read_exactly(rfile, 2)  # the CRLF after each chunk


def gunzip_body(data: bytes, limit: int) -> bytes:
    """The un-gzipped body, or b"" when it is not gzip or grows past `limit` (ReadRequestBytes
    returns no body then)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        return b""
    if len(out) > limit or inflater.unconsumed_tail:
        return b""
    return out


def read_body(headers, rfile, limit: int = MAX_BODY_BYTES, gunzip: bool = True) -> bytes:
    """A request's body as TF Serving's HTTP server reads it; BodyError when it is not read."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = _chunked(rfile, limit)
    else:
        given = headers.get("Content-Length")
        if given is None:
            return b""
        try:
            length = int(given)
        except ValueError:
            raise BodyError(400, "Bad Request") from None
        if length < 0:
            raise BodyError(400, "Bad Request")
        if length > limit:
            raise BodyError(413, "Request Entity Too Large")
        body = _read_exactly(rfile, length) if length else b""
    if gunzip and "gzip" in headers.get("Content-Encoding", "").lower():
        return gunzip_body(body, limit)
    return body


def refuse(handler, error: BodyError) -> None:
    """Answers a body that was not read, as evhttp does (a plain-text reason), and closes the
    connection: the unread rest of the body cannot start the next request. Before closing,
    what the client still sends is read and dropped for LINGER_SECONDS (a lingering close):
    closing on unread data would reset the connection before the client reads the answer."""
    text = f"{error.status} {error.reason}\n".encode()
    handler.close_connection = True
    handler.send_response(error.status, error.reason)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Content-Length", str(len(text)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(text)
    handler.wfile.flush()
    connection = handler.connection
    try:
        connection.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            connection.settimeout(left)
            if not connection.recv(65536):
                break
    except OSError:
        pass
