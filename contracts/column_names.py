"""Column names to feature keys: the one mapping from a data file's header to the names the
model, its signatures, the warm-up, the client and the report use.

A CSV header is the user's: `île`, `trip miles-x`, `2nd value` or `a.b` are fine column names
but not names TensorFlow (placeholders, Keras inputs, signature keys) or the config's
`NAME.PART` cross syntax can take. `feature_key` maps every name to a key of ASCII letters,
digits and `_` that starts with a letter:

- Unicode NFKD, then its combining marks dropped (`île` -> `ile`, `ｆｕｌｌ` -> `full`);
- every other character than an ASCII letter, digit or `_` becomes `_` (`trip miles-x` ->
  `trip_miles_x`, `a.b` -> `a_b`, `Straße` -> `Stra_e`: `ß` has no ASCII decomposition);
- a key that would not start with a letter gets `c_` in front (`2nd value` -> `c_2nd_value`);
- so does a Python keyword or `self` (`class` -> `c_class`): a signature's inputs become the
  argument names of TensorFlow's Python functions, and `tf.saved_model.save` fails on these
  ("'class' is not a valid parameter name", "got multiple values for argument 'self'").

A name that is already a key, and none of those, maps to itself, so existing configs and models keep their names,
and mapping twice changes nothing: a request or a config may give either the header or the key.
Two columns of one header that map to the same key are refused (`column_keys`), with one line
naming both: a suffix would make a key depend on the order of the columns.

Plain Python, no project import: every floor uses it.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from typing import Iterable

KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
PREFIX = "c_"
# Names a key cannot be: Python's keywords, and the `self` of the methods TensorFlow calls with them.
RESERVED = frozenset(keyword.kwlist) | {"self"}


class ColumnNameError(ValueError):
    """Two column names map to the same feature key."""


def feature_key(name: str) -> str:
    """The feature key of a column name (see the module docstring); a key maps to itself."""
    if KEY.match(name):
        return PREFIX + name if name in RESERVED else name
    decomposed = unicodedata.normalize("NFKD", name)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    key = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in kept)
    return key if key[:1].isascii() and key[:1].isalpha() and key not in RESERVED else PREFIX + key


def column_keys(names: Iterable[str], source: str = "the header") -> dict[str, str]:
    """{column name: feature key} for one header's names, in their order; ColumnNameError if
    two names map to one key."""
    keys: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in names:
        key = feature_key(name)
        if key in owner and owner[key] != name:
            raise ColumnNameError(
                f"columns '{owner[key]}' and '{name}' of {source} both become the feature key "
                f"'{key}' (names are mapped to ASCII letters, digits and '_'); rename one of them"
            )
        owner[key] = name
        keys[name] = key
    return keys


def column_headers(names: Iterable[str]) -> dict[str, str]:
    """{feature key: column name} for one header's names: how a key is shown to the user."""
    return {key: name for name, key in column_keys(names).items()}
