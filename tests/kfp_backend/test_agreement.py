"""agreement.py on small records: what it names alike, what KFP 2.0.5 and 2.5 may differ in, what it reports."""

from __future__ import annotations

import json
import types

from tests.kfp_backend import agreement

ROOT = "minio://mlpipeline/v2/artifacts"
RUN_ROOT = f"{ROOT}/p/run-a"
SCHEMA = "title: tfx.Examples\ntype: object\n"


def _harness_record(salt: str, uri_of_model: str, span: float = 1.0):
    """A harness (2.5) run of two tasks, as of_harness reads it from a harness.Backend."""
    examples = {
        "id": 7,
        "uri": f"{RUN_ROOT}/Gen/{salt}/examples",
        "schema": SCHEMA,
        "custom_properties": {"span": span, "display_name": "examples", "store_session_info": "{}"},
    }
    logs = {
        "id": 8,
        "uri": f"{RUN_ROOT}/Gen/{salt}/executor-logs",
        "schema": "title: system.Artifact",
        "custom_properties": {},
    }
    blessing = {
        "id": 9,
        "uri": f"{RUN_ROOT}/Eval/{salt}/blessing",
        "schema": "title: tfx.ModelBlessing",
        "custom_properties": {"current_model": uri_of_model, "current_model_id": "7", "display_name": "blessing"},
    }
    gen_input = {
        "inputs": {"parameterValues": {"n": 2}},
        "outputs": {
            "artifacts": {
                "examples": {"artifacts": [{"uri": examples["uri"], "type": {"instanceSchema": SCHEMA}}]},
                "executor-logs": {"artifacts": [{"uri": logs["uri"], "type": {"schemaTitle": "system.Artifact"}}]},
            },
            "outputFile": "/tmp/kfp_outputs/output_metadata.json",
        },
    }
    eval_input = {
        "inputs": {
            "artifacts": {
                "examples": {
                    "artifacts": [
                        {
                            "name": "7",
                            "uri": examples["uri"],
                            "type": {"instanceSchema": ""},
                            "metadata": examples["custom_properties"],
                        }
                    ]
                }
            }
        },
        "outputs": {"artifacts": {"blessing": {"artifacts": [{"uri": blessing["uri"]}]}}, "outputFile": "/tmp/o"},
    }
    results = {
        "Gen": types.SimpleNamespace(
            outputs={"examples": examples, "executor-logs": logs}, parameters={}, executor_input=gen_input
        ),
        "Eval": types.SimpleNamespace(outputs={"blessing": blessing}, parameters={"ok": 1}, executor_input=eval_input),
    }
    backend = types.SimpleNamespace(run_root=RUN_ROOT, object_files=lambda uri, root: ["a/b"])
    return agreement.of_harness(backend, results, ROOT)


def test_a_run_is_named_by_what_it_holds_not_by_its_ids_and_uris():
    record = _harness_record("u1", f"{RUN_ROOT}/Gen/u1/examples")
    [examples_in] = record["Eval"]["inputs"]["artifacts"]["examples"]
    assert examples_in["name"] == "Gen.examples"
    assert examples_in["uri"] == "<run root>/Gen/u1/examples"
    blessing = record["Eval"]["recorded"]["artifacts"]["blessing"]["custom_properties"]
    assert blessing["current_model_id"] == "Gen.examples"
    assert blessing["current_model"] == "<run root>/Gen/u1/examples"
    assert record["Eval"]["recorded"]["parameters"] == {"ok": 1.0}  # numbers as numbers
    assert record["Gen"]["recorded"]["artifacts"]["examples"]["type"] == "tfx.Examples"


def test_two_runs_alike_but_for_the_known_release_differences_agree():
    first = agreement.known(_harness_record("u1", f"{RUN_ROOT}/Gen/u1/examples"))
    second = agreement.known(_harness_record("u2", f"{RUN_ROOT}/Gen/u2/examples"))
    assert agreement.differences(first, second) == []
    # what known() took out: the logs output, the URI's salt, store_session_info
    assert "executor-logs" not in first["Gen"]["outputs"]["artifacts"]
    assert first["Gen"]["outputs"]["artifacts"]["examples"][0]["uri"] == "<run root>/Gen/examples"
    assert "store_session_info" not in first["Gen"]["recorded"]["artifacts"]["examples"]["custom_properties"]


def test_a_difference_is_reported_with_its_place_and_both_values():
    kfp = agreement.known(_harness_record("u1", f"{RUN_ROOT}/Gen/u1/examples", span=1.0))
    ours = agreement.known(_harness_record("u1", f"{RUN_ROOT}/Gen/u1/examples", span=2.0))
    found = agreement.differences(kfp, ours)
    assert "Eval.inputs.artifacts.examples: KFP" in found[0] and '"span": 1.0' in found[0]
    assert "Gen.recorded.artifacts.examples.custom_properties.span: KFP 1.0, harness 2.0" in found
    del ours["Eval"]["recorded"]["parameters"]["ok"]
    assert "Eval.recorded.parameters.ok: only in KFP's record (1.0)" in agreement.differences(kfp, ours)


def test_the_executor_input_is_read_from_the_drivers_pod_spec_patch():
    executor_input = {"inputs": {"parameterValues": {"x": "1"}}, "outputs": {"outputFile": "/tmp/o"}}
    command = ["/kfp-launcher/launch", "--pipeline_name", "p", "--executor_input", json.dumps(executor_input), "--"]
    patch = json.dumps({"containers": [{"name": "main", "command": command}]})
    assert agreement.executor_input_of(patch) == executor_input


def test_the_harness_keeps_a_double_as_ml_metadatas_own_store_does(tmp_path):
    """ML Metadata's C++ store keeps six decimal places of a double property (KFP's real run
    recorded the run page's AUC 0.9513216813520151 as 0.951322); the harness's store must too."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    from tests.kfp_backend.harness import _mlmd_value

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "mlmd.sqlite")
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    artifact = pb.Artifact(type_id=store.put_artifact_type(pb.ArtifactType(name="T")))
    values = [0.9513216813520151, 1.2345678e-07, 1796580265.0, 204, 0.8125, True]
    for index, value in enumerate(values):
        artifact.custom_properties[str(index)].double_value = float(value)
    [stored] = store.get_artifacts_by_id(store.put_artifacts([artifact]))
    kept = [stored.custom_properties[str(i)].double_value for i in range(len(values))]
    assert kept[0] == 0.951322 and kept[1] == 0.0  # what the store did to them
    assert [_mlmd_value(v) for v in values] == kept


def test_the_push_time_in_the_pushers_properties_is_not_compared():
    namer = agreement._Namer(RUN_ROOT)
    first = namer.properties({"pushed_version": "1796580265", "pushed_destination": "/mnt/s/taxi/1796580265"})
    second = namer.properties({"pushed_version": "1796580455", "pushed_destination": "/mnt/s/taxi/1796580455"})
    assert first == second == {"pushed_version": "<push time>", "pushed_destination": "/mnt/s/taxi/<push time>"}


def test_tensorboards_event_files_are_named_by_their_directory():
    kfp = ["train/events.out.tfevents.1796581106.vm.12.0.v2", "variables/variables.index"]
    ours = ["train/events.out.tfevents.1796581305.f7c1cf4b865d.1.0.v2", "variables/variables.index"]
    assert (
        agreement._keys(kfp)
        == agreement._keys(ours)
        == [
            "train/events.out.tfevents.<time.host.pid>",
            "variables/variables.index",
        ]
    )
    assert agreement._keys(["validation/events.out.tfevents.1.h.1.0.v2"]) != agreement._keys(kfp[:1])
