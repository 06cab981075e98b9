"""The Python baseline for `cargo xtask compare`: the `websockets` package's
own keepalive (``ping_interval`` / ``ping_timeout``), which pings every
interval and closes a connection whose pong does not come within the
timeout. Messages are read and dropped.

Usage: python server.py --port 0 --interval-ms 5000 --timeout-ms 10000
Prints ``listening on 127.0.0.1:PORT`` once bound.
"""

import argparse
import asyncio

import websockets


async def drain(websocket):
    async for _message in websocket:
        pass


async def main(args):
    server = await websockets.serve(
        drain,
        "127.0.0.1",
        args.port,
        ping_interval=args.interval_ms / 1000,
        ping_timeout=args.timeout_ms / 1000,
        compression=None,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await asyncio.sleep(args.max_seconds)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--interval-ms", type=int, default=5000)
    parser.add_argument("--timeout-ms", type=int, default=10000)
    parser.add_argument("--max-seconds", type=int, default=3600)
    asyncio.run(main(parser.parse_args()))
