"""ExampleGen's input fingerprint with the files' contents in it, not only sizes and times.

TFX fingerprints ExampleGen's input by file size and modification time, so a file edited in
place with the same size within the same second is taken as unchanged and the cached examples
(and model) are used again. The driver here adds a hash of the contents of every file the
split patterns can match. The modules are imported on first use (see `driver`, `component`).
"""
