"""TFX's file-based ExampleGens with the content-fingerprint driver (CSV: csv_example_gen)."""

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen as _FileBasedExampleGen

from components.content_fingerprint.driver import ContentFingerprintDriver


class ImportExampleGen(tfx.components.ImportExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver


class FileBasedExampleGen(_FileBasedExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver
