"""The data files a config names: the glob ExampleGen reads a data directory with, and the files
a run reads (the path itself, a glob's matches, a directory's files of the format, or the newest
spans'), each checked to exist, be readable and hold something."""

from __future__ import annotations

import glob
import os

from pipeline.config import ConfigError, DataFormat, PipelineConfig, not_visible_hint


def directory_pattern(data_format: DataFormat, directory: str) -> str:
    """The glob ExampleGen reads a data directory with: the format's (`*.csv`), `*.csv.gz` for
    a directory of gzipped CSV, `*.csv*` where it holds both (TFX's split takes one pattern;
    `data_files` refuses any other file that one matches). Remote directories: the format's."""
    pattern = data_format.file_pattern
    if data_format is not DataFormat.CSV:
        return pattern
    compressed = [f for f in glob.glob(os.path.join(directory, "*.csv.gz")) if os.path.isfile(f)]
    if not compressed:
        return pattern
    plain = [f for f in glob.glob(os.path.join(directory, pattern)) if os.path.isfile(f)]
    return "*.csv*" if plain else "*.csv.gz"


GLOB_CHARACTERS = "*?["


def is_glob(path: str) -> bool:
    return any(c in path for c in GLOB_CHARACTERS)


def split_glob(path: str) -> tuple[str, str]:
    """A glob as ExampleGen takes it: the directory before the first part with a wildcard (its
    input base) and the rest (its split pattern), e.g. /data/exports and 2024-*/part-*.csv."""
    parts = path.split(os.sep)
    first = next(i for i, part in enumerate(parts) if is_glob(part))
    return os.sep.join(parts[:first]) or os.sep, os.sep.join(parts[first:])


def _glob_files(path: str, data_format: DataFormat, fix: str) -> list[str]:
    """The files a glob matches, as ExampleGen's file matching (TensorFlow's gfile) does: each
    '*' within one directory level."""
    files = sorted(f for f in glob.glob(path) if os.path.isfile(f))
    if not files:
        raise ConfigError(
            f"data path {path} matches no file; fix the pattern (each '*' matches within one "
            f"directory level) or {fix} a file or directory of {data_format.value} files"
        )
    return files


# How an error about data.path says what to do (`files_at`'s `fix`).
SET_DATA_PATH = "set data.path in the config (or --set data.path=...) to"


def files_at(path: str, data_format: DataFormat, fix: str = SET_DATA_PATH) -> list[str]:
    """The input files at `path`: the file itself, a glob's matches, or the format's files in a
    directory (`directory_pattern`), each checked to be readable and to hold something. The one
    discovery `tfxp run` (`data_files`) and `tfxp init` share; `fix` completes each error's
    advice ("... to a file or directory of csv files")."""
    if is_glob(path):
        files = _glob_files(path, data_format, fix)
    elif not os.path.exists(path):
        raise ConfigError(
            f"data path {path} does not exist{not_visible_hint(path)}; {fix} a file or directory of "
            f"{data_format.value} files"
        )
    elif os.path.isfile(path):
        files = [path]
    else:
        pattern = directory_pattern(data_format, path)
        files = sorted(f for f in glob.glob(os.path.join(path, pattern)) if os.path.isfile(f))
        if not files:
            also = " or *.csv.gz" if data_format is DataFormat.CSV else ""
            raise ConfigError(
                f"data directory {path} holds no {pattern}{also} files; put the "
                f"{data_format.value} data there or {fix} another file or directory"
            )
        stray = [f for f in files if pattern == "*.csv*" and not f.endswith((".csv", ".csv.gz"))]
        if stray:
            raise ConfigError(
                f"data directory {path} holds .csv and .csv.gz files, so ExampleGen reads "
                f"every {pattern} file there, and {stray[0]} is neither; move it out of "
                "the directory (or rename it)"
            )
    return readable(files)


def readable(files: list[str]) -> list[str]:
    """The files, each checked to be readable and not empty."""
    for f in files:
        if not os.access(f, os.R_OK):
            raise ConfigError(
                f"data file {f} cannot be read (permission denied); fix its permissions or copy it somewhere readable"
            )
        if os.path.getsize(f) == 0:
            raise ConfigError(f"data file {f} is empty; give a file with a header and rows")
    return files


def data_files(config: PipelineConfig) -> list[str]:
    """The input files: the path itself, a glob's matches, the matching files in that directory,
    or those of the newest spans."""
    path = config.data.path
    if is_glob(path) and config.data.span_pattern:
        raise ConfigError(
            f"data.path {path} is a glob; with data.span_pattern it must be the directory that holds the spans"
        )
    if config.data.span_pattern and os.path.exists(path):
        from pipeline.spans import current_files

        return readable(current_files(config))
    return files_at(path, config.data.format)
