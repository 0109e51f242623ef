"""Logging set-up: the console plus a rotating file in the user's data folder.

Only entry points call :func:`setup_logging`; library code just uses
``logging.getLogger(__name__)``. ``PODIUM_LOG_LEVEL`` sets the console level.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from inference.paths import log_dir

LOG_FILE = "podium.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def setup_logging(console_level: str | None = None) -> Path | None:
    """Log to stderr at ``console_level`` (default WARNING) and to a rotating file at INFO.

    Returns the log file path, or None if the data folder is not writable (then only the console logs).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    level_name = (console_level or os.environ.get("PODIUM_LOG_LEVEL") or "WARNING").upper()
    console = logging.StreamHandler()
    console.setLevel(getattr(logging, level_name, logging.WARNING))
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    root.setLevel(logging.DEBUG if level_name == "DEBUG" else logging.INFO)
    path = log_dir() / LOG_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot write the log file %s (%s); logging to the console only", path, exc)
        return None
    file_handler.setLevel(logging.DEBUG if level_name == "DEBUG" else logging.INFO)
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(file_handler)
    return path
