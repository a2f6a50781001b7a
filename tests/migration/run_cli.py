"""Run ``flask logstore ...`` in a separate process against a journal backend (for kill -9 tests).

Usage: python -m tests.migration.run_cli DATABASE_URL SPOOL_DIR INSTANCE_PATH logstore migrate ...
"""

from __future__ import annotations

import sys

from flask.cli import FlaskGroup

from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.host_app import create_app

JOURNAL = "tests.migration.journal.JournalBackend"


def main() -> None:
    database_url, spool_dir, instance_path, *args = sys.argv[1:]
    settings = LogStoreSettings(_env_file=None, backend=JOURNAL, spool_dir=spool_dir)
    app = create_app(database_url, settings=settings)
    app.instance_path = instance_path
    FlaskGroup(create_app=lambda: app, add_default_commands=False, load_dotenv=False).main(args=args, prog_name="flask")


if __name__ == "__main__":
    main()
