"""Types of the compiled ``filters.tokenscan`` (see tokenscan.pyx for what each does)."""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

def add_words(out: set[str], text: str) -> int: ...
def add_header_words(out: set[str], prefix: str, value: str, ascii: bool = True) -> None: ...

SLOT_DTYPE: list[tuple[str, str]]
NO_EVIDENCE: float

def fill_slots(
    slots: npt.NDArray[np.void],
    tokens: list[str],
    weights: npt.NDArray[np.float64],
    log_f: npt.NDArray[np.float64],
    log_1mf: npt.NDArray[np.float64],
) -> int: ...
def sum_tokens(
    found: Iterable[str], slots: npt.NDArray[np.void]
) -> tuple[float, int, float, float]: ...
def chi2_q(chi2: float, n: int) -> float: ...
def add_relays(out: set[str], value: str) -> None: ...
def add_header_tokens(
    out: set[str], headers: Iterable[tuple[str, str]], max_received: int, max_chars: int
) -> list[str]: ...
