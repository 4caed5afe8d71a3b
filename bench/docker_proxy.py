"""A counting proxy in front of the Docker engine's unix socket (run as its own process).

Every HTTP request a client sends through ``--listen`` is forwarded to ``--upstream`` and
written as one line ``<unix time> <METHOD> <path>`` to ``--log`` (flushed at once), so the
bench can count the Docker API requests of a process in any time window without touching its
code: point the process's ``DOCKER_HOST`` at ``unix://<listen>``.

Client-to-engine bytes are parsed just enough to find request boundaries (Content-Length or
chunked bodies); engine-to-client bytes are copied untouched (long event streams included).
A request that upgrades the connection (attach, exec) turns it into a plain byte pipe.
It lives until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
from typing import TextIO

_CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _forward_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        writer.write(size_line)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                line = await reader.readuntil(b"\r\n")
                writer.write(line)
                if line == b"\r\n":
                    return
        writer.write(await reader.readexactly(size + 2))
        await writer.drain()


class Proxy:
    """One listening socket; one log line per request."""

    def __init__(self, upstream: str, log: TextIO) -> None:
        self._upstream = upstream
        self._log = log

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            engine_r, engine_w = await asyncio.open_unix_connection(self._upstream)
        except OSError:
            client_w.close()
            return
        back = asyncio.create_task(_pipe(engine_r, client_w))
        try:
            await self._requests(client_r, engine_w)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                engine_w.write_eof()
            await back
            with contextlib.suppress(Exception):
                engine_w.close()

    async def _requests(
        self, client_r: asyncio.StreamReader, engine_w: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                head = await client_r.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            request_line, _, header_block = head.partition(b"\r\n")
            method, _, rest = request_line.decode("latin-1").partition(" ")
            path = rest.rpartition(" ")[0]
            self._log.write(f"{time.time():.6f} {method} {path}\n")
            self._log.flush()
            headers = {}
            for line in header_block.split(b"\r\n"):
                name, sep, value = line.partition(b":")
                if sep:
                    headers[name.strip().lower()] = value.strip().lower()
            engine_w.write(head)
            if headers.get(b"transfer-encoding") == b"chunked":
                await _forward_chunked(client_r, engine_w)
            elif length := int(headers.get(b"content-length", b"0") or 0):
                engine_w.write(await client_r.readexactly(length))
            await engine_w.drain()
            if b"upgrade" in headers.get(b"connection", b""):
                await _pipe(client_r, engine_w)
                return


async def _serve(listen: str, upstream: str, log_path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(listen)
    with open(log_path, "a", buffering=1) as log:
        server = await asyncio.start_unix_server(Proxy(upstream, log).handle, path=listen)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with server:
            await stop.wait()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(listen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", required=True, help="unix socket path to serve")
    parser.add_argument("--upstream", default="/var/run/docker.sock", help="engine socket")
    parser.add_argument("--log", required=True, help="file the request lines are appended to")
    args = parser.parse_args()
    asyncio.run(_serve(args.listen, args.upstream, args.log))


if __name__ == "__main__":
    main()
