"""pycolmap, imported so that the process keeps its SIGTERM handler.

Importing pycolmap installs glog's failure signal handler, which on SIGTERM prints a stack trace and
kills the process at once. reshoot treats SIGTERM as an interrupt (stages remove their temporary
files, the CLI exits 130), so the handler the process had before the import is put back. Every module
imports pycolmap from here.
"""

from __future__ import annotations

import signal
import threading

_before = signal.getsignal(signal.SIGTERM)
import pycolmap  # noqa: E402  (the import whose side effect is undone below)

if threading.current_thread() is threading.main_thread() and _before is not None:
    signal.signal(signal.SIGTERM, _before)

__all__ = ["pycolmap"]
