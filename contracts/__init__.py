"""The contracts every layer shares, at the bottom of the layers: the pushed model's
(`saved_model`: signature names, TF Serving's method names, the files beside the SavedModel),
the serving directory's (`serving_dir`: versions, hidden copies, the atomic publish), and the
one mapping of column names to feature keys (`column_names`).

Plain Python: nothing here imports the project or TensorFlow at import time, so the modules
that run in the side environment of the serving image (components/serving_check) use it too.
"""
