"""``python -m bot.simulator``: run the local DingTalk by hand; type lines to push messages."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import TextIO

from bot.simulator.thread import SimulatorThread

HELP = (
    "Type a line to push it as an @-bot group message. Commands: /ping /drop /halfopen "
    "/disconnect /status /quit"
)


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    """Start the simulator, print its base URL and the settings a bot needs, serve until quit."""
    parser = argparse.ArgumentParser(prog="python -m bot.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--client-id", default="dingsimulatorapp")
    parser.add_argument(
        "--client-secret", default=None, help="default: a random throwaway one, printed below"
    )
    parser.add_argument("--conversation", default="cidSimulatorDesk==", help="group to push to")
    parser.add_argument(
        "--drop-offline",
        action="store_true",
        help="drop frames pushed while no client is connected, as DingTalk does (default: queue)",
    )
    args = parser.parse_args(argv)
    lines = stdin if stdin is not None else sys.stdin
    with SimulatorThread(
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        queue_when_offline=not args.drop_offline,
    ) as sim:
        print(sim.base_url)
        print(f"export DINGTALK_OPENAPI_ENDPOINT={sim.base_url}")
        print(f"export DINGTALK_CLIENT_ID={sim.client_id}")
        if args.client_secret is None:  # the simulator's own throwaway secret, safe to show
            print(f"export DINGTALK_CLIENT_SECRET={sim.client_secret}")
        print(HELP, file=sys.stderr)
        sys.stdout.flush()
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(sim, stop), daemon=True)
        watcher.start()
        try:
            _serve(sim, args.conversation, lines)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            watcher.join(timeout=2)
    return 0


def _serve(sim: SimulatorThread, conversation: str, lines: TextIO) -> None:
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line == "/quit":
            return
        print(_command(sim, conversation, line), file=sys.stderr)
    while True:  # stdin closed (run in the background): serve until interrupted
        time.sleep(3600)


def _command(sim: SimulatorThread, conversation: str, line: str) -> str:
    if line == "/ping":
        return f"ping sent, opaque {sim.ping()}"
    if line == "/drop":
        return f"dropped {sim.drop_connections()} socket(s)"
    if line == "/halfopen":
        return f"{sim.go_half_open()} socket(s) half-open"
    if line == "/disconnect":
        return f"disconnect sent to {sim.send_disconnect(10.0, wait=False)} socket(s)"
    if line == "/status":
        return (
            f"sockets {sim.connection_count}, opened {sim.connections_opened}, "
            f"waiting {sim.pending}, acks {len(sim.acks())}"
        )
    msg_id = sim.push_group_message(conversation, line)
    return f"pushed {msg_id}" + ("" if sim.connection_count else " (queued: no client)")


def _watch(sim: SimulatorThread, stop: threading.Event) -> None:
    """Print what the bot sends back (session replies, group messages) as it arrives."""
    replies = sent = 0
    while not stop.wait(0.2):
        new_replies = sim.session_replies()[replies:]
        new_sent = sim.group_messages()[sent:]
        replies += len(new_replies)
        sent += len(new_sent)
        for reply in new_replies:
            body = reply.get("text") or reply.get("markdown") or {}
            print(f"[reply {reply['conversation_id']}] {body}", file=sys.stderr)
        for message in new_sent:
            print(f"[send {message['conversation_id']}] {message['param']}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
