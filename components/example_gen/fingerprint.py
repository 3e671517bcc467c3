"""The content fingerprint as a plain function: split patterns in, a hash of the files out."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Iterable

# Span, version and date specs in a split pattern ({SPAN}, {SPAN:2}, {VERSION}, {YYYY}, ...):
# every file any of them can match is hashed, so an edit to any span is seen.
_SPEC = re.compile(r"\{[A-Z]+(?::\d+)?\}")
_CHUNK = 1 << 20


def files_for(input_base: str, patterns: Iterable[str]) -> list[str]:
    """Every file under `input_base` that one of the split patterns can match, sorted."""
    import tensorflow as tf  # gfile: local paths and object stores alike

    found: set[str] = set()
    for pattern in patterns:
        found.update(tf.io.gfile.glob(os.path.join(input_base, _SPEC.sub("*", pattern))))
    return sorted(path for path in found if not tf.io.gfile.isdir(path))


def content_fingerprint(input_base: str, patterns: Iterable[str]) -> str:
    """sha256 over each matching file's path (relative to `input_base`) and bytes."""
    import tensorflow as tf

    digest = hashlib.sha256()
    for path in files_for(input_base, patterns):
        digest.update(os.path.relpath(path, input_base).encode() + b"\0")
        with tf.io.gfile.GFile(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return f"content sha256:{digest.hexdigest()}"
