"""``python -m bot.simulator``: run the local DingTalk until interrupted; print how to reach it."""

from __future__ import annotations

import argparse
import sys
import time

from bot.simulator.thread import SimulatorThread


def main(argv: list[str] | None = None) -> int:
    """Start the simulator and print the settings a bot needs to connect to it."""
    parser = argparse.ArgumentParser(prog="python -m bot.simulator")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--client-id", default="dingsimulatorapp")
    parser.add_argument("--client-secret", default=None, help="default: random, printed below")
    args = parser.parse_args(argv)
    with SimulatorThread(
        port=args.port, client_id=args.client_id, client_secret=args.client_secret
    ) as sim:
        # The secret printed here is the simulator's own throwaway one, not a real credential.
        print(f"export DINGTALK_OPENAPI_ENDPOINT={sim.base_url}")
        print(f"export DINGTALK_CLIENT_ID={sim.client_id}")
        print(f"export DINGTALK_CLIENT_SECRET={sim.client_secret}")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
