"""Triggers only: read the binding, call `shared`, log. No decisions here.

When the app starts (the worker indexes it), the settings are checked once and said in one log line:
a bad setting shows in the log before any trigger meets it. Reading them costs microseconds and no
SDK import, and the check never raises, so indexing always succeeds.
"""

import logging

from shared.settings import startup_line

_ok, _line = startup_line()
logging.getLogger("autopilot.startup").log(logging.INFO if _ok else logging.ERROR, "%s", _line)
