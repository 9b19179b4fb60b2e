"""A benchmark's JSON result: stamped with the machine and time, written, and echoed."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def write_result(out: Path, result: dict[str, Any], *, echo: bool = True) -> None:
    """Add ``machine``, ``at`` and the machine's load to ``result``, write it to ``out`` and
    print it (``echo=False`` when the benchmark prints its own table).

    The load average goes beside every figure: on a shared machine a number measured at
    load 8 is not comparable with one measured at load 0.
    """
    stamped = {
        **result,
        "machine": f"{platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}",
        "cpus": os.cpu_count(),
        "load_average_1m_5m_15m": [round(x, 2) for x in os.getloadavg()],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stamped, indent=2) + "\n")
    if echo:
        print(json.dumps(stamped, indent=2))
