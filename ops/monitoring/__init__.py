"""The served model in production: ground truth joined to logged requests (feedback), live
metrics, drift and health over a window (monitor), and a static HTML page per run (report)."""
