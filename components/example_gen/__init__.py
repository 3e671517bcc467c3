"""ExampleGen: TFX's file-based ExampleGens (CSV, Parquet, TFRecord import) with a columnar CSV
conversion, the files' contents in the input fingerprint, {SPAN} resolved where no driver ran,
and a write in an order that depends on the examples alone.

- `component`: the components (CsvExampleGen, ImportExampleGen, FileBasedExampleGen);
- `options`: the row options (missing-value markers, row filters) in their custom_config;
- `csv_executor` over `csv_convert`: CSV records to TFX's tf.Examples, a batch at a time;
- `parquet_executor`: TFX's Parquet executor with the CSV one's row options;
- `driver` over `fingerprint`: TFX's input fingerprint plus a hash of the files' contents;
- `span_resolution`: {SPAN} resolved by the executor where no ExampleGen driver ran (KFP);
- `stable_write` over `shuffle`: each split written in an order that depends on its examples.

The components are imported on first use: Beam workers import this package to unpickle the
executors' functions, and the component module would make each of them import TFX's component classes.
"""

_COMPONENTS = ("CsvExampleGen", "FileBasedExampleGen", "ImportExampleGen")


def __getattr__(name: str):
    if name in _COMPONENTS:
        from components.example_gen import component

        return getattr(component, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_COMPONENTS)
