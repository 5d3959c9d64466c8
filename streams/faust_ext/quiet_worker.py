"""``faust.Worker`` without the terminal spinner.

Changes: overrides ``Worker.on_setup_root_logger`` (a hook of mode's worker).

Why: at log levels of WARN and above Faust installs a spinner handler and sets the root
logger to DEBUG so that every record turns it; every debug call of Faust and aiokafka on
the per-message path then builds a LogRecord nobody reads (about a tenth of the worker's
time under load). Upstream candidate: a ``spinner=False`` option of ``faust.Worker``.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

import logging

import faust


class QuietWorker(faust.Worker):
    """A worker whose root logger stays at the level asked for."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)
        logger.setLevel(level)
