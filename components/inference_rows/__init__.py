"""InferenceRows: new raw rows typed by the model that is to score them (the pipeline's step
before BulkInferrer when `inference.data_path` is set)."""
