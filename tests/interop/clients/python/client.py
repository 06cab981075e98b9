"""A vigil client in Python, on the `websockets` library (13 or newer).

The library pings the server every --keepalive seconds and closes the
connection (1011) when a pong takes longer than that; the server pings this
client when it has been silent for the server's interval. Both run at once.

    pip install websockets
    python3 client.py --url ws://127.0.0.1:8080/ws --channel lobby

Prints one line per event: `welcome`, `joined`, `message`, `error`,
`keepalive` (a pong to the library's ping), `pings` (with --ping-rate),
`silent`, `closed`.
--silent: after joining, freeze like a hung process: nothing read or
written, the socket left open; the server closes it within its bound.
--ping-rate N: also send N pings a second and count the server's pongs.
"""

import argparse
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException


async def main(args):
    async with connect(
        args.url, ping_interval=args.keepalive, ping_timeout=args.keepalive
    ) as ws:
        welcome = json.loads(await ws.recv())
        beat = welcome["heartbeat"]
        print(f"welcome {welcome['user']} interval_ms={beat['interval_ms']} "
              f"timeout_ms={beat['timeout_ms']}")
        await ws.send(json.dumps({"op": "join", "channel": args.channel, "id": 1}))
        tasks = [asyncio.create_task(report_keepalive(ws, args.keepalive))]
        if args.ping_rate > 0:
            tasks.append(asyncio.create_task(ping(ws, args.ping_rate)))
        try:
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "reply" and event.get("id") == 1:
                    members = len(event["presence"]["members"])
                    print(f"joined {args.channel} members={members}")
                    await ws.send(json.dumps({
                        "op": "publish", "channel": args.channel,
                        "data": {"text": "hello from python"}, "id": 2,
                    }))
                    if args.silent:
                        print("silent")
                        time.sleep(3600)  # blocks the event loop: no reads, no pongs
                elif event["type"] == "message":
                    data = json.dumps(event["data"], separators=(",", ":"))
                    print(f"message {event['from']} {data}")
                elif event["type"] == "error":
                    print(f"error {event['code']} {event['message']}")
        except ConnectionClosed as closed:
            frame = closed.rcvd
            code, reason = (frame.code, frame.reason) if frame else (1006, "no close frame")
            print(f"closed {code} {reason}")
        finally:
            for task in tasks:
                task.cancel()


async def report_keepalive(ws, keepalive):
    """Prints the round trip of each keepalive ping the library got a pong for."""
    seen = ws.latency
    while True:
        await asyncio.sleep(keepalive / 4)
        if ws.latency != seen:
            seen = ws.latency
            print(f"keepalive rtt_ms={seen * 1000:.1f}")


async def ping(ws, rate):
    """Sends `rate` pings a second of our own; prints the count every second."""
    sent, answered = 0, 0

    def pong(waiter):
        nonlocal answered
        if not waiter.cancelled() and waiter.exception() is None:
            answered += 1

    loop = asyncio.get_running_loop()
    start = next_report = loop.time()
    try:
        while True:
            waiter = await ws.ping(b"p%d" % sent)
            waiter.add_done_callback(pong)
            sent += 1
            if loop.time() >= next_report:
                print(f"pings sent={sent} pongs={answered}")
                next_report += 1
            await asyncio.sleep(max(0, start + sent / rate - loop.time()))
    except ConnectionClosed:
        pass  # main() reports the close


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description="A vigil client on `websockets`.")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    parser.add_argument("--channel", default="lobby")
    parser.add_argument("--keepalive", type=float, default=20.0,
                        help="seconds between our pings, and for each pong")
    parser.add_argument("--ping-rate", type=float, default=0.0,
                        help="extra pings a second (0: none)")
    parser.add_argument("--silent", action="store_true",
                        help="after joining, freeze with the socket open")
    args = parser.parse_args()
    if args.keepalive <= 0 or args.ping_rate < 0:
        parser.error("--keepalive must be positive and --ping-rate not negative")
    try:
        asyncio.run(main(args))
    except (OSError, WebSocketException) as error:
        sys.exit(f"error: {args.url}: {error}")
    except KeyboardInterrupt:
        pass
