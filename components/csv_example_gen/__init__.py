"""CsvExampleGen: TFX's CSV ExampleGen with a columnar conversion to tf.Examples
and a shuffle on disk.

The component class is imported on first use: Beam workers import this package to unpickle
the executor's functions, and the component module would make each of them import `tfx.v1`.
"""


def __getattr__(name: str):
    if name == "CsvExampleGen":
        from components.csv_example_gen.component import CsvExampleGen

        return CsvExampleGen
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CsvExampleGen"]
