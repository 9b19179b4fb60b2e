"""A benchmark's JSON result: stamped with the machine and time, written, and echoed."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def write_result(out: Path, result: dict[str, Any]) -> None:
    """Add ``machine`` and ``at`` to ``result``, write it to ``out`` and print it."""
    stamped = {
        **result,
        "machine": f"{platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stamped, indent=2) + "\n")
    print(json.dumps(stamped, indent=2))
