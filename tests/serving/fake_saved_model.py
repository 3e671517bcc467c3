"""A minimal SavedModel on disk for the serving-directory tests: a saved_model.pb that parses,
with a marker to tell versions apart, and a variables checkpoint layout."""

from __future__ import annotations

import pathlib


def write(directory: pathlib.Path, marker: str, shards: int = 1) -> pathlib.Path:
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    saved = saved_model_pb2.SavedModel(
        meta_graphs=[
            meta_graph_pb2.MetaGraphDef(
                meta_info_def=meta_graph_pb2.MetaGraphDef.MetaInfoDef(tags=["serve"], meta_graph_version=marker)
            )
        ]
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(saved.SerializeToString())
    (directory / "variables").mkdir(exist_ok=True)
    (directory / "variables" / "variables.index").write_text(marker)
    for shard in range(shards):
        (directory / "variables" / f"variables.data-{shard:05d}-of-{shards:05d}").write_text(marker)
    return directory


def marker(directory: pathlib.Path) -> str:
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((directory / "saved_model.pb").read_bytes())
    return saved.meta_graphs[0].meta_info_def.meta_graph_version
