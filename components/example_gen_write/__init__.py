"""ExampleGen's write of its splits, in an order that depends on the examples alone (shuffle),
for the CSV, Parquet and TFRecord-import executors (executor.StableOrderExecutor)."""
