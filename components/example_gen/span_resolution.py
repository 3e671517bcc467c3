"""{SPAN} resolved by ExampleGen's executor where no ExampleGen driver ran (KFP 2.x).

TFX resolves a split pattern's {SPAN}/{VERSION}/date specs in ExampleGen's driver. The local
runner runs it, and Vertex AI runs it as the step's preCacheCheck hook; the open-source KFP
backend runs neither, so the executor would read a literal "{SPAN}". Here the executor does
what the driver does (tfx/components/example_gen/driver.py `resolve_exec_properties`, with the
same input processor as our driver) when the patterns it gets are still unresolved, and
records the span, version and fingerprint on the examples artifact as the driver would.
"""

from __future__ import annotations

import re
from typing import Any

_SPEC = re.compile(r"\{(SPAN|VERSION|YYYY|MM|DD)(:\d+)?\}")


def resolve(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The exec properties as TFX's FileBasedDriver would have left them (unchanged when no split
    pattern holds a span, version or date spec)."""
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2, range_config_pb2
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    from components.example_gen.driver import ContentFingerprintInputProcessor

    input_config = proto_utils.json_to_proto(exec_properties[specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
    if not any(_SPEC.search(split.pattern) for split in input_config.splits):
        return exec_properties
    resolved = dict(exec_properties)
    range_config = None
    if resolved.get(specs.RANGE_CONFIG_KEY):
        range_config = proto_utils.json_to_proto(resolved[specs.RANGE_CONFIG_KEY], range_config_pb2.RangeConfig())
    processor = ContentFingerprintInputProcessor(resolved[specs.INPUT_BASE_KEY], input_config.splits, range_config)
    span, version = processor.resolve_span_and_version()
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    resolved[specs.INPUT_CONFIG_KEY] = proto_utils.proto_to_json(input_config)
    resolved[utils.SPAN_PROPERTY_NAME] = span
    resolved[utils.VERSION_PROPERTY_NAME] = version
    resolved[utils.FINGERPRINT_PROPERTY_NAME] = processor.get_input_fingerprint(span, version)
    return resolved


def record(examples: Any, exec_properties: dict[str, Any]) -> None:
    """The span, version and input fingerprint on the examples artifact, as TFX's driver sets them."""
    from tfx.components.example_gen import utils

    examples.span = int(exec_properties[utils.SPAN_PROPERTY_NAME])
    if exec_properties.get(utils.VERSION_PROPERTY_NAME) is not None:
        examples.version = int(exec_properties[utils.VERSION_PROPERTY_NAME])
    if exec_properties.get(utils.FINGERPRINT_PROPERTY_NAME) is not None:
        examples.set_string_custom_property(
            utils.FINGERPRINT_PROPERTY_NAME, str(exec_properties[utils.FINGERPRINT_PROPERTY_NAME])
        )


class ResolvesSpans:
    """Mix-in for an ExampleGen executor: resolves the spans first when no driver did, and records
    the span on the examples artifact either way (TFX's local runner publishes ExampleGen's output
    without the span its driver resolved), so the components after it read the span of the data
    they got instead of working it out again from the files, which may have changed since."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 - TFX's name
        from tfx.components.example_gen import utils
        from tfx.types import artifact_utils
        from tfx.types import standard_component_specs as specs

        exec_properties = resolve(exec_properties)
        result = super().Do(input_dict, output_dict, exec_properties)
        if exec_properties.get(utils.SPAN_PROPERTY_NAME) is not None:
            record(artifact_utils.get_single_instance(output_dict[specs.EXAMPLES_KEY]), exec_properties)
        return result
