"""The S4 host and its scenarios run only in a fresh interpreter (see ``test_s4_host.py``).

``flask_difylogstore.dify.compat`` decides at import time whether it runs inside Dify, so the
scenarios cannot share the main run's interpreter, where compat has already decided "standalone".
"""

collect_ignore = ["scenarios", "host"]
