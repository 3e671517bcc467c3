"""`tfxp model-card`: where a served version's model card is (written by the Pusher,
components/model_card, into the version's assets.extra/)."""

from __future__ import annotations

import os

from contracts.saved_model import ASSETS_EXTRA, MODEL_CARD_HTML, MODEL_CARD_JSON, MODEL_CARD_MD
from ops.lineage import served_version
from pipeline.config import ConfigError

FORMATS = {"md": MODEL_CARD_MD, "html": MODEL_CARD_HTML, "json": MODEL_CARD_JSON}


def card_path(serving_dir: str, version: int | None = None, fmt: str = "md") -> str:
    """The card file of `version` (default: the newest served version) in format `fmt`."""
    version = served_version(serving_dir, version)
    path = os.path.join(serving_dir, str(version), ASSETS_EXTRA, FORMATS[fmt])
    if not os.path.isfile(path):
        raise ConfigError(
            f"version {version} has no model card ({path} is missing): it was pushed before the Pusher "
            "wrote cards, or copied in by hand"
        )
    return path
