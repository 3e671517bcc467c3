"""CsvExampleGen: TFX's CSV ExampleGen with a columnar conversion to tf.Examples
and a shuffle on disk."""

from components.csv_example_gen.component import CsvExampleGen

__all__ = ["CsvExampleGen"]
