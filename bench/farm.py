"""
Run serialgw with many lines in one process, for the benchmark:

    python3 bench/farm.py DEVICES_FILE FIRST_PORT

DEVICES_FILE lists one tty path a line; line i gets a raw listener on
127.0.0.1:FIRST_PORT+i.  Prints "ready" when all listen.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import epollreactor  # noqa: E402

epollreactor.install()

from twisted.internet import reactor  # noqa: E402

from serialgw.config import DeviceSpec, LineConfig, ListenerSpec, Protocol  # noqa: E402
from serialgw.service import GatewayService  # noqa: E402
from serialgw.tap import raiseFileLimit  # noqa: E402


def main() -> None:
    devices = [line.strip() for line in open(sys.argv[1]) if line.strip()]
    first = int(sys.argv[2])
    raiseFileLimit()
    configs = [
        LineConfig(f"line{i}", DeviceSpec("tty", path),
                   listeners=(ListenerSpec(f"tcp:{first + i}:interface=127.0.0.1", Protocol.RAW),))
        for i, path in enumerate(devices)
    ]
    service = GatewayService(configs, reactor=reactor)
    service.startService()
    print("ready", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
