# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The token model's inner loops in C: word scanning, token lookups, Fisher's tail.

``filters.model.tokens`` spent most of its time turning regex matches into
Python lists and filtering them by length again, and ``TokenModel.logit_of``
in building a numpy index array from 270 dict lookups per message; each scan
here walks the text once and adds what it finds straight to the caller's set.
The scans match exactly what these regular expressions find with ``findall``
(``tests/filters/test_tokenscan.py`` checks them against the regexes):

- ``add_words``: ``[\\w$][\\w$'.-]*!?`` (Unicode ``\\w``), keeping runs of 3 to
  12 characters and a ``skip:`` token for longer ones;
- ``add_header_words``: ``[\\w$][\\w$'.-]{1,28}[\\w$!]``, with ASCII or Unicode
  ``\\w``, each match behind a prefix.
"""

from cpython.set cimport PySet_Add
from cpython.unicode cimport (
    Py_UNICODE_ISALNUM,
    PyUnicode_DATA,
    PyUnicode_KIND,
    PyUnicode_READ,
)
from libc.math cimport exp, log, lgamma

import re

# Python's re: \w is str.isalnum() or "_" (re.ASCII: [a-zA-Z0-9_]).
cdef inline bint _word(Py_UCS4 c, bint ascii):
    if c < 128:
        return (
            (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or (c >= 48 and c <= 57)
            or c == 95 or c == 36  # "_", "$"
        )
    return not ascii and Py_UNICODE_ISALNUM(c)


cdef inline bint _regex_word(Py_UCS4 c, bint ascii):
    """``\\w`` itself, Unicode or under ``re.ASCII``: what ``\\b`` tells apart (no "$")."""
    return c != 36 and _word(c, ascii)


cdef inline bint _inner(Py_UCS4 c, bint ascii):
    """The middle of a run: a word character, "$", "'", "." or "-"."""
    return c == 39 or c == 46 or c == 45 or _word(c, ascii)


def add_words(set out, str text):
    """Add every run of 3 to 12 characters to ``out``, and ``skip:<first> <tens>`` for longer.

    Returns how many runs were words (3 to 12 long), repeats included.
    """
    cdef Py_ssize_t n = len(text), i = 0, start, length, words = 0
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    while i < n:
        if not _word(PyUnicode_READ(kind, data, i), False):
            i += 1
            continue
        start = i
        i += 1
        while i < n and _inner(PyUnicode_READ(kind, data, i), False):
            i += 1
        if i < n and PyUnicode_READ(kind, data, i) == 33:  # "!"
            i += 1
        length = i - start
        if length > 12:
            PySet_Add(out, "skip:%s %d" % (text[start], length // 10 * 10))
        elif length > 2:
            PySet_Add(out, text[start:i])
            words += 1
    return words


def add_header_words(set out, str prefix, str value, bint ascii=True):
    """Add ``prefix + word`` to ``out`` for each header word (3 to 30 characters) in ``value``.

    As the regex engine does: the middle takes up to 28 characters greedily,
    then gives them back one at a time until the character after it can end
    the word; where no word starts, the scan moves on by one character.
    """
    _header_words(out, prefix, value, ascii)


cdef void _header_words(set out, str prefix, str value, bint ascii) except *:
    cdef Py_ssize_t n = len(value), s = 0, j, limit, end
    cdef int kind = PyUnicode_KIND(value)
    cdef void* data = PyUnicode_DATA(value)
    cdef Py_UCS4 c
    while s < n:
        if not _word(PyUnicode_READ(kind, data, s), ascii):
            s += 1
            continue
        j = s + 1
        limit = min(n, s + 29)
        while j < limit and _inner(PyUnicode_READ(kind, data, j), ascii):
            j += 1
        end = -1
        if j > s + 1:
            if j < n:
                c = PyUnicode_READ(kind, data, j)
                if c == 33 or _word(c, ascii):  # "!" or a word character
                    end = j
            if end < 0:
                # Given back, each was a middle character: it ends a word only if a word one.
                j -= 1
                while j >= s + 2:
                    if _word(PyUnicode_READ(kind, data, j), ascii):
                        end = j
                        break
                    j -= 1
        if end < 0:
            s += 1
            continue
        PySet_Add(out, prefix + value[s : end + 1])
        s = end + 1


cdef inline bint _digit(Py_UCS4 c):
    return 48 <= c <= 57


def add_relays(set out, str value):
    """Add ``ip:a.b.c`` for each IPv4 address in ``value``: the /24 a relay sent from.

    As ``\\b(\\d{1,3}\\.\\d{1,3}\\.\\d{1,3})\\.\\d{1,3}\\b`` with ``re.ASCII`` finds them:
    each group is a whole run of one to three digits, since a longer run
    could not be followed by its dot or its word boundary either.
    """
    _relays(out, value)


cdef void _relays(set out, str value) except *:
    cdef Py_ssize_t n = len(value), s = 0, i, j, group, end, dot = 0
    cdef int kind = PyUnicode_KIND(value)
    cdef void* data = PyUnicode_DATA(value)
    while s < n:
        if not _digit(PyUnicode_READ(kind, data, s)) or (
            s > 0 and _regex_word(PyUnicode_READ(kind, data, s - 1), True)
        ):
            s += 1
            continue
        i = s
        end = -1
        for group in range(4):
            j = i
            while j < n and _digit(PyUnicode_READ(kind, data, j)):
                j += 1
            if j == i or j - i > 3:
                break
            if group == 3:
                if j == n or not _regex_word(PyUnicode_READ(kind, data, j), True):
                    end = j
                break
            if j == n or PyUnicode_READ(kind, data, j) != 46:  # "."
                break
            if group == 2:
                dot = j
            i = j + 1
        if end < 0:
            s += 1
            continue
        PySet_Add(out, "ip:" + value[s:dot])
        s = end


_ENCODED_WORD_RE = re.compile(r"=\?([\w-]{1,30})\?([bq])\?", re.IGNORECASE)


def add_header_tokens(set out, headers, Py_ssize_t max_received, Py_ssize_t max_chars):
    """Add each header's tokens to ``out``; return the first Received values, lower-cased.

    Per (name, value) pair: ``h:<name>``; the value's words as
    ``<name>:<word>`` (ASCII ``add_header_words`` on its first ``max_chars``
    characters, lower-cased); the charset and encoding of each RFC 2047
    encoded word (``encoded:<name>:<charset>:<b|q>``); and for the first
    ``max_received`` Received headers their relays (``add_relays``). Later
    Received headers add only their name: they repeat our own hops.
    """
    cdef list received = []
    cdef str name, value, lname, lowered
    for name, value in headers:
        lname = name.lower()
        PySet_Add(out, "h:" + lname)
        if lname == "received":
            if len(received) >= max_received:
                continue
            value = value[:max_chars]
            lowered = value.lower()
            received.append(lowered)
            _relays(out, value)
        else:
            value = value[:max_chars]
            lowered = value.lower()
        _header_words(out, lname + ":", lowered, True)
        if "=?" in value:
            for charset, encoding in _ENCODED_WORD_RE.findall(value):
                PySet_Add(out, f"encoded:{lname}:{charset.lower()}:{encoding.lower()}")
    return received


def add_tags(set out, str html):
    """Add ``tag:<name>`` for each ``<name`` in lower-cased ``html``: ``<([a-z]{1,10})\\b``.

    A name is one to ten letters a-z after "<", not followed by a word
    character (Unicode ``\\w``): a longer run of letters or one that runs on
    into digits or other letters is no tag name.
    """
    cdef Py_ssize_t n = len(html), i, start
    cdef int kind = PyUnicode_KIND(html)
    cdef void* data = PyUnicode_DATA(html)
    i = html.find("<")
    while i >= 0:
        start = i = i + 1
        while i < n and 97 <= PyUnicode_READ(kind, data, i) <= 122 and i - start < 11:
            i += 1
        if start < i <= start + 10 and (
            i == n or not _regex_word(PyUnicode_READ(kind, data, i), False)
        ):
            PySet_Add(out, "tag:" + html[start:i])
        i = html.find("<", i)


cdef inline bint _byte_word(unsigned char c):
    """``\\w`` in a bytes pattern: ASCII letters, digits and "_"."""
    return (97 <= c <= 122) or (65 <= c <= 90) or (48 <= c <= 57) or c == 95


cdef inline bint _in(unsigned char c, const char* extra):
    """A byte-pattern word character or one of ``extra``."""
    cdef Py_ssize_t k = 0
    if _byte_word(c):
        return True
    while extra[k]:
        if c == <unsigned char>extra[k]:
            return True
        k += 1
    return False


cdef inline Py_ssize_t _run(const unsigned char* raw, Py_ssize_t i, Py_ssize_t n,
                            const char* extra):
    while i < n and _in(raw[i], extra):
        i += 1
    return i


def add_mime_structure(set out, bytes lowered):
    """Add ``ctype:``, ``charset:`` and ``cte:`` tokens from the lower-cased raw message.

    What these patterns find, each value once:
    ``content-type:[ \\t]*([\\w-]{1,30}/[\\w.+-]{1,60})``,
    ``charset=["']?([\\w.:-]{1,40})`` and
    ``content-transfer-encoding:[ \\t]*([\\w-]{1,20})``.
    """
    cdef const unsigned char* raw = lowered
    cdef Py_ssize_t n = len(lowered), at, i, j, k
    at = lowered.find(b"content-type:")
    while at >= 0:
        i = _blanks(raw, at + 13, n)
        j = _run(raw, i, n, b"-")
        if i < j <= i + 30 and j < n and raw[j] == 47:  # "/"
            k = _run(raw, j + 1, n, b".+-")
            if k > j + 1:
                k = min(k, j + 61)
                PySet_Add(out, "ctype:" + lowered[i:k].decode("ascii"))
                at = lowered.find(b"content-type:", k)
                continue
        at = lowered.find(b"content-type:", at + 1)
    _add_values(out, lowered, b"charset=", "charset:", True, b".:-", 40)
    _add_values(out, lowered, b"content-transfer-encoding:", "cte:", False, b"-", 20)


cdef inline Py_ssize_t _blanks(const unsigned char* raw, Py_ssize_t i, Py_ssize_t n):
    """Where the run of spaces and tabs starting at ``i`` ends."""
    while i < n and (raw[i] == 32 or raw[i] == 9):
        i += 1
    return i


cdef void _add_values(
    set out, bytes lowered, bytes literal, str prefix, bint quoted, const char* extra,
    Py_ssize_t longest,
) except *:
    """Add ``prefix + value`` for each ``literal`` followed by one optional quote (``quoted``)
    or by spaces and tabs, then a value: a run of word characters or ``extra``, cut at
    ``longest``. Where no value follows, the search goes on one byte later, as findall does.
    """
    cdef const unsigned char* raw = lowered
    cdef Py_ssize_t n = len(lowered), at = lowered.find(literal), i, j
    while at >= 0:
        i = at + len(literal)
        if not quoted:
            i = _blanks(raw, i, n)
        elif i < n and (raw[i] == 34 or raw[i] == 39):  # a quote
            i += 1
        j = _run(raw, i, n, extra)
        if j > i:
            j = min(j, i + longest)
            PySet_Add(out, prefix + lowered[i:j].decode("ascii"))
            at = lowered.find(literal, j)
        else:
            at = lowered.find(literal, at + 1)


cdef inline bint _url_separator(Py_UCS4 c):
    """``[/?&=#.:+_~%-]``: what splits a URL into pieces."""
    return (c == 47 or c == 63 or c == 38 or c == 61 or c == 35 or c == 46 or c == 58
            or c == 43 or c == 95 or c == 126 or c == 37 or c == 45)


def add_url_pieces(set out, urls, Py_ssize_t max_urls):
    """Add ``urlp:<piece>`` for the pieces of each URL after its scheme (at most ``max_urls``).

    As ``re.split(r"[/?&=#.:+_~%-]+", url.partition("://")[2].lower())`` and
    then pieces 1 to 7 of 3 to 19 characters: the first piece is the host's
    first label, the rest host labels, path and query words. An empty piece
    (before a leading or after a trailing separator) takes its place too.
    """
    cdef Py_ssize_t n, i, start, index, seen = 0
    cdef str rest
    cdef int kind
    cdef void* data
    for url in urls:
        if seen >= max_urls:
            break
        seen += 1
        rest = url.partition("://")[2].lower()
        n = len(rest)
        kind, data = PyUnicode_KIND(rest), PyUnicode_DATA(rest)
        i = index = 0
        while index < 8:
            start = i
            while i < n and not _url_separator(PyUnicode_READ(kind, data, i)):
                i += 1
            if index and 2 < i - start < 20:
                PySet_Add(out, "urlp:" + rest[start:i])
            if i >= n:
                break
            while i < n and _url_separator(PyUnicode_READ(kind, data, i)):
                i += 1
            index += 1


# One slot of a model's token table: the token's hash, its weight and its evidence.
cdef packed struct Slot:
    long long key
    double weight
    double log_f
    double log_1mf

SLOT_DTYPE = [("key", "<i8"), ("weight", "<f8"), ("log_f", "<f8"), ("log_1mf", "<f8")]
# ``log_f`` of a token without evidence: no probability has a positive log.
cdef double _NO_EVIDENCE = 1.0
NO_EVIDENCE = _NO_EVIDENCE


cdef inline long long _key(object token) except? -1:
    """The token's hash as stored (0 marks an empty slot, so a hash of 0 is stored as 1)."""
    cdef long long h = hash(token)
    return h if h != 0 else 1


def fill_slots(Slot[::1] slots, list tokens, const double[::1] weights, const double[::1] log_f,
               const double[::1] log_1mf):
    """Put each token's values in ``slots`` (zeroed, a power of two long), by linear probing.

    Returns how many tokens shared a hash with an earlier one (they are left out).
    """
    cdef Py_ssize_t mask = slots.shape[0] - 1, i, at
    cdef long long key
    cdef Py_ssize_t clashes = 0
    for i in range(len(tokens)):
        key = _key(tokens[i])
        at = key & mask
        while slots[at].key != 0 and slots[at].key != key:
            at = (at + 1) & mask
        if slots[at].key == key:
            clashes += 1
            continue
        slots[at].key = key
        slots[at].weight = weights[i]
        slots[at].log_f = log_f[i]
        slots[at].log_1mf = log_1mf[i]
    return clashes


def sum_tokens(found, const Slot[::1] slots):
    """(weight sum, tokens with evidence, their sum of log f, of log 1-f) over ``found``.

    Tokens are looked up by hash in ``slots`` (see ``fill_slots``): one probe of
    a compact array instead of a dict lookup that also compares the strings.
    Unknown tokens add nothing.
    """
    cdef double z = 0.0, sum_f = 0.0, sum_1mf = 0.0
    cdef Py_ssize_t n_strong = 0, mask = slots.shape[0] - 1, at
    cdef long long key
    for token in found:
        key = _key(token)
        at = key & mask
        while slots[at].key != key:
            if slots[at].key == 0:
                break
            at = (at + 1) & mask
        else:
            z += slots[at].weight
            if slots[at].log_f != _NO_EVIDENCE:
                n_strong += 1
                sum_f += slots[at].log_f
                sum_1mf += slots[at].log_1mf
    return z, n_strong, sum_f, sum_1mf


def chi2_q(double chi2, Py_ssize_t n):
    """P(X >= chi2) for X chi-squared with 2n degrees of freedom: a Poisson tail, in logs.

    The sum of ``m**i e**-m / i!`` for ``i < n`` with ``m = chi2 / 2``, each
    term taken relative to the largest so that none underflows.
    """
    cdef double m = chi2 / 2.0, log_m, top, total = 0.0
    cdef Py_ssize_t i, mode
    if m <= 0.0:
        return 1.0
    if n <= 0:
        return 0.0
    log_m = log(m)
    # The Poisson terms rise up to i = floor(m) and fall after it.
    mode = min(n - 1, <Py_ssize_t>m)
    top = mode * log_m - m - lgamma(mode + 1.0)
    for i in range(n):
        total += exp(i * log_m - m - lgamma(i + 1.0) - top)
    return min(1.0, exp(top) * total)
