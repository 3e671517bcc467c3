"""Transform: TFX's Transform executor with its transformed examples written in an order that
depends on the examples alone.

- `executor`: TFX's Transform executor, whose TFRecord write is `example_gen.shuffle`'s
  ShuffleAndWrite instead of Beam's WriteToTFRecord.
"""
