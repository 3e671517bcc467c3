"""Checks the data a config names before any TFX component starts.

TFX would fail on these minutes later with a long traceback; here each gets one line that
says what is wrong and how to fix it.
"""

from __future__ import annotations

import csv
import glob
import os

from pipeline.config import ConfigError, DataFormat, PipelineConfig


def data_files(config: PipelineConfig) -> list[str]:
    """The input files: the path itself, the matching files in that directory, or those of the
    newest spans."""
    path = config.data.path
    if not os.path.exists(path):
        raise ConfigError(f"data path {path} does not exist; set data.path in the config "
                          "(or --set data.path=...) to a file or directory of "
                          f"{config.data.format.value} files")
    if config.data.span_pattern:
        from pipeline.spans import current_files

        files = current_files(config)
    elif os.path.isfile(path):
        files = [path]
    else:
        files = sorted(f for f in glob.glob(os.path.join(path, config.data.format.file_pattern))
                       if os.path.isfile(f))
        if not files:
            raise ConfigError(f"data directory {path} holds no {config.data.format.file_pattern} "
                              f"files; put the {config.data.format.value} data there or point "
                              "data.path elsewhere")
    for f in files:
        if not os.access(f, os.R_OK):
            raise ConfigError(f"data file {f} cannot be read (permission denied); "
                              "fix its permissions or copy it somewhere readable")
        if os.path.getsize(f) == 0:
            raise ConfigError(f"data file {f} is empty; give a file with a header and rows")
    return files


def required_columns(config: PipelineConfig) -> list[str]:
    columns = [config.label.column, *config.features]
    if config.label.greater_than_fraction_of:
        columns.append(config.label.greater_than_fraction_of)
    return list(dict.fromkeys(columns))


def csv_header(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            first_row = next(reader, None)
    except UnicodeDecodeError:
        raise ConfigError(f"data file {path} is not UTF-8 text; convert it (for example with "
                          "iconv -f LATIN1 -t UTF-8) or point data.path at the right file") from None
    if not header:
        raise ConfigError(f"data file {path} has no header line; add a first line naming the columns")
    if first_row is None:
        raise ConfigError(f"data file {path} has a header but no rows")
    return [c.strip() for c in header]


_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


def check_rows(path: str, header: list[str]) -> int:
    """Reads every row once (streamed): each must be UTF-8 with as many fields as the header.

    Catches a truncated file, a file with another delimiter or encoding, or a stray row,
    which ExampleGen would otherwise report minutes later as a Beam traceback. Returns the
    number of rows.
    """
    rows = line = 0
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader, None)
            for row in reader:
                rows += 1
                line = reader.line_num
                if len(row) != len(header) and row:
                    raise ConfigError(f"data file {path}, line {line}: {len(row)} fields, but the header "
                                      f"has {len(header)} (a truncated file, another delimiter, or an "
                                      "unquoted comma); fix or remove that line")
    except UnicodeDecodeError as err:
        raise ConfigError(f"data file {path} is not UTF-8 text (after line {line}: {err.reason}); "
                          "convert it, for example with iconv -f LATIN1 -t UTF-8") from None
    return rows


def check_data(config: PipelineConfig) -> list[str]:
    """Validates the data against the config; returns the input files."""
    files = data_files(config)
    if config.data.format is DataFormat.CSV:
        headers = {f: csv_header(f) for f in files}
        for f, header in headers.items():
            if len(header) == 1:
                for delimiter, name in _OTHER_DELIMITERS.items():
                    if delimiter in header[0]:
                        raise ConfigError(f"data file {f} separates its columns with {name}, not commas; "
                                          "convert it to comma-separated CSV")
            check_rows(f, header)
        first_file, first = next(iter(headers.items()))
        for f, header in headers.items():
            if header != first:
                raise ConfigError(f"data files {first_file} and {f} have different headers; "
                                  "every CSV file of a dataset needs the same columns")
        check_columns(config, first, first_file)
    elif config.data.format is DataFormat.PARQUET:
        import pyarrow.parquet as pq

        check_columns(config, pq.read_schema(files[0]).names, files[0])
    if config.schema.path and not os.path.isfile(config.schema.path):
        raise ConfigError(f"schema file {config.schema.path} does not exist; set schema.path to a "
                          "schema.pbtxt, or remove it to infer the schema")
    return files


def check_columns(config: PipelineConfig, columns: list[str], source: str) -> None:
    label = config.label.column
    if label not in columns:
        raise ConfigError(f"label column '{label}' is not in {source} (columns: "
                          f"{', '.join(columns)}); set label.column to one of them")
    missing = [c for c in required_columns(config) if c not in columns]
    if missing:
        raise ConfigError(f"feature column(s) {', '.join(repr(c) for c in missing)} named in the "
                          f"config are not in {source} (columns: {', '.join(columns)}); "
                          "fix the names under features or remove them")
