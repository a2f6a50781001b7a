"""flask-difylogstore."""
from flask_difylogstore._version import __version__

__all__ = ["__version__"]
