"""ServingWarmup: the trained model plus TF Serving warm-up requests built from real examples."""

from components.serving_warmup.component import ServingWarmup

__all__ = ["ServingWarmup"]
