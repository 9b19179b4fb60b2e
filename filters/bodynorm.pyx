# cython: language_level=3, boundscheck=False, wraparound=False
"""The spam-signature body normalisation (``filters.signatures.normalise``) in one C pass.

Five regex passes, then bytes operations and a literal search, took 35 us
of an average corpus message; one pass over the bytes takes a few. What it
computes is the module docstring of ``filters.signatures``: a Python version
made of those bytes operations checks it in ``tests/filters/test_bodynorm.py``.
"""

from libc.stdlib cimport free, malloc


cdef inline bint _space(unsigned char c):
    """What ``bytes.split()`` splits on: ASCII whitespace."""
    return c == 32 or 9 <= c <= 13


def normalise_bytes(bytes text):
    """Whitespace runs to one space, digit runs to ``0``; then tokens with a digit or ``@``:

    ``@`` for a token holding an ``@`` (an address), ``~`` for one of 12 or
    more bytes (ids, hex, base64), as it was otherwise.
    """
    cdef const unsigned char* data = text
    cdef Py_ssize_t n = len(text), i = 0, k = 0, start
    cdef unsigned char c
    cdef bint at, digit, after_digit
    cdef unsigned char* out = <unsigned char*>malloc(n + 1)
    if out == NULL:
        raise MemoryError()
    try:
        while True:
            while i < n and _space(data[i]):
                i += 1
            if i >= n:
                break
            if k:
                out[k] = 32
                k += 1
            start, at, digit, after_digit = k, False, False, False
            while i < n and not _space(data[i]):
                c = data[i]
                i += 1
                if 48 <= c <= 57:
                    digit = True
                    if not after_digit:
                        out[k] = 48
                        k += 1
                    after_digit = True
                    continue
                after_digit = False
                at = at or c == 64
                out[k] = c
                k += 1
            if at or (digit and k - start >= 12):
                out[start] = 64 if at else 126
                k = start + 1
        return out[:k]
    finally:
        free(out)
