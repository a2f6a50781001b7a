"""``python -m flask_difylogstore.testing.sls``: run a local SLS server in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from flask_difylogstore.testing.sls.server import LocalSLSServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flask_difylogstore.testing.sls", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--data-dir", default=None, help="keep data here across restarts (default: memory)")
    parser.add_argument("--access-key-id", default="local-ak")
    parser.add_argument("--access-key-secret", default="local-sk")
    parser.add_argument("--no-auth", action="store_true", help="accept unsigned requests")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    server = LocalSLSServer(
        args.host, args.port, access_key_id=args.access_key_id, access_key_secret=args.access_key_secret,
        data_dir=args.data_dir, require_auth=not args.no_auth,
    )  # fmt: skip
    # Stop cleanly (flushing buffered logs to --data-dir) on SIGTERM as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.start()
    print(f"local SLS server on {server.endpoint} (ak={server.access_key_id})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
