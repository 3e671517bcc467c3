"""ExampleGen's row options, as the component writes them into its custom_config and the CSV
and Parquet executors read them back: `missing_values`, the cells read as missing,
`required_columns`, the columns whose rows are dropped where they are missing, and
`allowed_values`, per column the values a row must hold to be kept."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from google.protobuf import any_pb2, json_format, struct_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils


def custom_config(
    missing_values: Sequence[str] = (),
    required_columns: Sequence[str] = (),
    allowed_values: Mapping[str, Sequence[str]] | None = None,
) -> example_gen_pb2.CustomConfig:
    """The executor's options (csv_options reads them) as ExampleGen's custom_config."""
    struct = struct_pb2.Struct()
    struct.update({"missing_values": list(missing_values), "required_columns": list(required_columns)})
    if allowed_values:
        struct.update({"allowed_values": {name: list(values) for name, values in allowed_values.items()}})
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def csv_options(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """`csv_convert.parse`'s missing_values, required columns and allowed values from the custom_config."""
    text = exec_properties.get(specs.CUSTOM_CONFIG_KEY)
    if not text:
        return {}
    custom = proto_utils.json_to_proto(text, example_gen_pb2.CustomConfig())
    struct = struct_pb2.Struct()
    if not custom.custom_config.Unpack(struct):
        raise ValueError(
            f"CsvExampleGen's custom_config holds a {custom.custom_config.type_url}, not a google.protobuf.Struct"
        )
    options = json_format.MessageToDict(struct)
    return {
        "missing_values": list(options.get("missing_values", [])),
        "required": list(options.get("required_columns", [])),
        "allowed": {name: list(values) for name, values in options.get("allowed_values", {}).items()},
    }
