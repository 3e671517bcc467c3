"""Curating the schema: export the schema the pipeline inferred, to edit and import.

The exported file is TFDV's text schema with the label columns kept out of the SERVING
environment (requests carry no label), ready for `schema.path` (ImportSchemaGen).
"""

from __future__ import annotations

import os

from pipeline.config import ConfigError, PipelineConfig
from pipeline.metadata import node_id, open_store, producers

TRAINING, SERVING = "TRAINING", "SERVING"


def latest_inferred_schema(config: PipelineConfig) -> str:
    """The schema.pbtxt of the newest SchemaGen run that inferred one."""
    store = open_store(config.metadata_path)
    schemas = {a.id: a for a in store.get_artifacts_by_type("Schema")}
    producer = producers(store, list(schemas))
    executions = {e.id: e for e in store.get_executions_by_id(list(set(producer.values())))}
    candidates = [
        schemas[artifact_id]
        for artifact_id, execution_id in producer.items()
        if node_id(store, executions[execution_id], config.pipeline_name) == "SchemaGen"
        and "schema_file" not in executions[execution_id].custom_properties
    ]
    if not candidates:
        raise ConfigError(
            f"no inferred schema in {config.metadata_path}; run the pipeline once without schema.path first"
        )
    return os.path.join(max(candidates, key=lambda a: a.id).uri, "schema.pbtxt")


def export_schema(config: PipelineConfig, output: str) -> str:
    """Writes the latest inferred schema, with environments for the label, to `output`."""
    inferred = latest_inferred_schema(config)  # before TFDV loads TensorFlow: a missing store says so quietly
    import tensorflow_data_validation as tfdv

    from models.model_inputs import label_columns

    schema = tfdv.load_schema_text(inferred)
    del schema.default_environment[:]
    schema.default_environment.extend([TRAINING, SERVING])
    labels = set(label_columns(config)) - set(config.features)
    for feature in schema.feature:
        if feature.name in labels:
            del feature.not_in_environment[:]
            feature.not_in_environment.append(SERVING)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tfdv.write_schema_text(schema, output)
    return output
