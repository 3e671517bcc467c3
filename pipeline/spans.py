"""Spans: numbered drops of data below data.path, named by data.span_pattern.

The pattern's {SPAN} is the span number (e.g. "span-{SPAN}/*.csv"); TFX's ExampleGen picks the
newest `data.rolling_spans` spans itself. Here: which spans exist, which files a run reads,
and adding a drop as the next span.
"""

from __future__ import annotations

import glob
import os
import re
import shutil

from pipeline.config import ConfigError, PipelineConfig


def _span_regex(pattern: str) -> re.Pattern:
    parts = [re.escape(part).replace(r"\*", "[^/]*").replace(r"\?", "[^/]") for part in pattern.split("{SPAN}")]
    return re.compile("^" + r"(\d+)".join(parts) + "$")


def span_files(config: PipelineConfig) -> dict[int, list[str]]:
    """{span: its files}, for every span below data.path."""
    pattern = config.data.span_pattern
    if not pattern:
        raise ConfigError(
            "data.span_pattern is not set; set it (for example --set "
            "'data.span_pattern=span-{SPAN}/*.csv') to read numbered drops"
        )
    regex = _span_regex(pattern)
    found: dict[int, list[str]] = {}
    for path in glob.glob(os.path.join(config.data.path, pattern.replace("{SPAN}", "*"))):
        match = regex.match(os.path.relpath(path, config.data.path))
        if match and os.path.isfile(path):
            found.setdefault(int(match[1]), []).append(path)
    return {span: sorted(files) for span, files in sorted(found.items())}


def current_files(config: PipelineConfig) -> list[str]:
    """The files the next run reads: those of the newest data.rolling_spans spans."""
    spans = span_files(config)
    if not spans:
        raise ConfigError(
            f"data directory {config.data.path} holds no span matching "
            f"'{config.data.span_pattern}'; add one with `tfxp add-span FILE`"
        )
    newest = sorted(spans)[-config.data.rolling_spans :]
    return [f for span in newest for f in spans[span]]


def add_span(config: PipelineConfig, source: str) -> tuple[int, str]:
    """Copies `source` in as the next span; returns (span, the new file's path)."""
    if not os.path.isfile(source):
        raise ConfigError(f"{source} is not a file; give the CSV file of the new drop")
    spans = span_files(config)
    span = (max(spans) + 1) if spans else 1
    directory, _, name_glob = config.data.span_pattern.rpartition("/")
    if "{SPAN}" in name_glob:
        raise ConfigError("add-span needs {SPAN} in a directory of data.span_pattern, for example span-{SPAN}/*.csv")
    target_dir = os.path.join(config.data.path, directory.replace("{SPAN}", str(span)))
    target = os.path.join(target_dir, os.path.basename(source))
    if not _span_regex(config.data.span_pattern).match(os.path.relpath(target, config.data.path)):
        raise ConfigError(
            f"{os.path.basename(source)} does not match '{name_glob}' of data.span_pattern; rename the file"
        )
    os.makedirs(target_dir)
    partial = target + ".partial"
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return span, target
