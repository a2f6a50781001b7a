"""``python -m flask_difylogstore.testing.es --port 9200``: run the local server in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading

from flask_difylogstore.testing.es.server import LocalElasticsearchServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Elasticsearch-compatible server for development.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--version", default=None, help="version reported by GET / (default: client major .1.0)")
    parser.add_argument("--data-dir", default=None, help="directory that keeps the data between runs")
    parser.add_argument("--refresh-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    server = LocalElasticsearchServer(
        args.host,
        args.port,
        version=args.version,
        data_dir=args.data_dir,
        refresh_interval=args.refresh_interval,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"Local Elasticsearch {server.version} listening on {server.url}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
