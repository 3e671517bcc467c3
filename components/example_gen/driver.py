"""TFX's FileBasedDriver with the content fingerprint added to TFX's own (size and mtime).

TFX fingerprints ExampleGen's input by file size and modification time, so a file edited in
place with the same size within the same second is taken as unchanged and the cached examples
(and model) are used again. This driver adds a hash of the contents of every file the split
patterns can match (`fingerprint`).
"""

from __future__ import annotations

from tfx.components.example_gen import driver, input_processor

from components.example_gen.fingerprint import content_fingerprint


class ContentFingerprintInputProcessor(input_processor.FileBasedInputProcessor):
    def __init__(self, input_base_uri, splits, range_config=None):
        super().__init__(input_base_uri, splits, range_config)
        self._content_base = input_base_uri
        self._content_patterns = [split.pattern for split in splits]

    def get_input_fingerprint(self, span, version):
        tfx_fingerprint = super().get_input_fingerprint(span, version)
        return f"{tfx_fingerprint}\n{content_fingerprint(self._content_base, self._content_patterns)}"


class ContentFingerprintDriver(driver.FileBasedDriver):
    """ExampleGen's driver: spans, versions and TFX's fingerprint, plus the files' contents."""

    def get_input_processor(self, splits, range_config=None, input_base_uri=None):
        assert input_base_uri
        return ContentFingerprintInputProcessor(input_base_uri, splits, range_config)
