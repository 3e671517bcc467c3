"""TFX's Parquet ExampleGen executor with the missing-value markers and row filters of the CSV one."""
