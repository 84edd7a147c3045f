"""A TCP relay: ``python -m smartsync_pipeline_tests.distributed.tcp_relay LISTEN_HOST TARGET_HOST PORT...``.

Accepts on ``LISTEN_HOST:PORT`` and connects to ``TARGET_HOST:PORT`` for each port; a connection
closed (or reset) on one side is closed on the other, so a killed client's database session and
broker channel end as they would on a real network. Prints ``ready`` once every port listens.
The test's worker hosts reach the machine's services (bound to 127.0.0.1) through two of these:
one inside the host's network namespace on its own 127.0.0.1, one on the veth address outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(listen: str, target: str, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(handle, listen, port, reuse_address=True)


async def main(listen: str, target: str, ports: list[int]) -> None:
    servers = [await _serve(listen, target, port) for port in ports]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]))
