"""The sandbox's only way out: a PostgreSQL proxy pinned to one role and one database.

The sandbox has no network. Its kernel reaches PostgreSQL through a Unix socket that this proxy
(in the grader, outside the sandbox) listens on and forwards to the real server. The proxy reads
each connection's startup message and lets it through only when it asks for the submission's own
role and database, with no ``options`` and no replication: so even a server that trusts every
local connection (the embedded server does) never sees learner code connect as a superuser or to
another database. Encryption requests are declined (the socket is local); cancel requests pass.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from urllib.parse import unquote, urlsplit

__all__ = ["PostgresProxy"]

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_PROTOCOL_3 = 196608
_MAX_STARTUP = 10_000


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed during startup")
        data += chunk
    return data


def parse_startup(body: bytes) -> dict[str, str]:
    """The parameters of a protocol-3 startup message body (after length and version).

    Examples
    --------
    >>> parse_startup(b"user\\x00alice\\x00database\\x00db1\\x00\\x00")
    {'user': 'alice', 'database': 'db1'}
    """
    parts = body.split(b"\x00")
    if len(parts) < 2 or parts[-1] != b"" or parts[-2] != b"":
        raise ValueError("malformed startup message")
    fields = parts[:-2]
    if len(fields) % 2:
        raise ValueError("malformed startup message")
    params: dict[str, str] = {}
    for key, value in zip(fields[::2], fields[1::2], strict=True):
        name = key.decode("utf-8", "strict")
        if name in params:
            raise ValueError(f"parameter {name} given twice")
        params[name] = value.decode("utf-8", "strict")
    return params


class PostgresProxy:
    """Listen on ``socket_dir/.s.PGSQL.<port>`` and forward allowed connections to ``server_url``.

    Parameters
    ----------
    server_url : str
        Where the real server is (host, port; a Unix socket folder in ``?host=`` works too).
    socket_dir : str
        Folder for the listening socket (mounted into the sandbox).
    user, database : str
        The only role and database a connection may ask for.
    port : int
        The number in the socket's name; clients use it as their port.
    max_connections : int
        Connections open at once; more are refused.
    """

    def __init__(
        self,
        server_url: str,
        socket_dir: str,
        *,
        user: str,
        database: str,
        port: int = 5432,
        max_connections: int = 32,
    ):
        self.user, self.database, self.port = user, database, port
        self.path = os.path.join(socket_dir, f".s.PGSQL.{port}")
        parts = urlsplit(server_url)
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        host = unquote(query.get("host", "")) or parts.hostname or "localhost"
        self._target: tuple = (host, int(query.get("port", parts.port or 5432)))
        self._slots = threading.BoundedSemaphore(max_connections)
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.refused: list[str] = []  # why connections were refused, for the grader's log

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> PostgresProxy:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o666)  # the sandbox user connects; nothing else can reach the folder
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, name="pg-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> PostgresProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- connections --------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                self.refused.append("too many connections")
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def _connect_server(self) -> socket.socket:
        host, port = self._target
        if host.startswith("/"):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(os.path.join(host, f".s.PGSQL.{port}"))
        else:
            server = socket.create_connection((host, port), timeout=10)
            server.settimeout(None)
        return server

    def _startup(self, client: socket.socket) -> bytes | None:
        """The startup packet to forward, or None to refuse (encryption requests answered here)."""
        client.settimeout(10)
        for _ in range(3):
            length, code = struct.unpack("!ii", _read_exact(client, 8))
            if not 8 <= length <= _MAX_STARTUP:
                raise ValueError("startup message too long")
            body = _read_exact(client, length - 8)
            if code in (_SSL_REQUEST, _GSS_REQUEST) and length == 8:
                client.sendall(b"N")
                continue
            if code == _CANCEL_REQUEST and length == 16:
                return struct.pack("!ii", length, code) + body
            if code != _PROTOCOL_3:
                raise ValueError(f"protocol {code} is not allowed")
            params = parse_startup(body)
            extra = set(params) - {"user", "database", "application_name", "client_encoding", "DateStyle"}
            if extra:
                raise ValueError(f"startup parameters {sorted(extra)} are not allowed")
            if params.get("user") != self.user:
                raise ValueError(f"role {params.get('user')!r} is not the submission's role")
            if params.get("database", params.get("user")) != self.database:
                raise ValueError(f"database {params.get('database')!r} is not the submission's database")
            return struct.pack("!ii", length, code) + body
        raise ValueError("too many encryption requests")

    def _serve(self, client: socket.socket) -> None:
        server = None
        try:
            self._track(client)
            try:
                packet = self._startup(client)
            except (ValueError, ConnectionError, OSError, UnicodeDecodeError, struct.error) as err:
                self.refused.append(str(err))
                _send_error(client, f"connection refused by the grader: {err}")
                return
            server = self._connect_server()
            self._track(server)
            client.settimeout(None)
            server.sendall(packet)
            pump = threading.Thread(target=_pump, args=(server, client), daemon=True)
            pump.start()
            _pump(client, server)
            pump.join()
        except OSError:
            pass
        finally:
            for sock in (client, server):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
                    with self._lock:
                        self._open.discard(sock)
            self._slots.release()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _send_error(client: socket.socket, message: str) -> None:
    """A PostgreSQL ErrorResponse, so the client prints a reason instead of 'server closed'."""
    fields = b"SFATAL\x00C28000\x00M" + message.encode("utf-8", "replace")[:500] + b"\x00\x00"
    with contextlib.suppress(OSError):
        client.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
