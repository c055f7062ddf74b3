"""The one progress bar every stage uses: tqdm on stderr, redrawn at most every 2 s, and off when stderr is not a
terminal (a batch job's log would otherwise fill with carriage-return redraws; stages log their counts instead)."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(desc: str, unit: str, *, total: int | None = None, initial: int = 0, leave: bool = True,
                 enabled: bool = True) -> Any:
    """A tqdm bar (``unit="B"`` scales to KB/MB with 1024). ``enabled=False`` or a non-terminal stderr gives a bar
    that counts but draws nothing, so callers never branch on it."""
    from tqdm import tqdm

    return tqdm(desc=desc, unit=unit, total=total, initial=initial, leave=leave, mininterval=2.0,
                dynamic_ncols=True, unit_scale=unit in ("B", " lines"), unit_divisor=1024 if unit == "B" else 1000,
                file=sys.stderr, disable=None if enabled else True)
