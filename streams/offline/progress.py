"""A progress bar (tqdm) that draws only when standard error is a terminal.

Progress is counted in bytes of the input as stored, so a gzip file's bar ends at its
compressed size; a pipe has no size, so the bar shows the bytes read and the rate.
"""

from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm


class Progress:
    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None) -> None:
        out = stream or sys.stderr
        self._done = 0
        self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True,
                         unit_divisor=1024, file=out, leave=False, mininterval=0.25,
                         disable=not out.isatty(), dynamic_ncols=True)

    def update(self, position: int) -> None:
        """Move the bar to ``position`` bytes (monotonic; lower values are ignored)."""
        if position > self._done:
            self._bar.update(position - self._done)
            self._done = position

    def write(self, line: str) -> None:
        """Print a line above the bar (or plainly, when there is no bar)."""
        self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
