"""TF Serving stand-in: TensorFlow Serving's REST and gRPC APIs over the pushed SavedModels.

`tensorflow_model_server` is in neither PyPI nor Debian, so where it cannot be installed this
stand-in serves the pushed models instead. It is NOT TensorFlow Serving. It loads each version
the way TF Serving does (components/serving_check/loader.py: a TF1 session, the restore op,
the init op, SignatureDefs run by tensor names), replays the version's warm-up file at load,
and answers requests through components/serving_check/tf_serving_requests.py, a port of TF
Serving's request code. What it implements, over the same `<base path>/<version>/` layout:
- REST (http_rest_api_handler.cc, http_rest_api_util.cc, util/json_tensor.cc):
  GET /v1/models/<name>[/versions/<v>|/labels/<l>][/metadata],
  POST /v1/models/<name>[/versions/<v>|/labels/<l>]:(predict|classify|regress), with TF
  Serving's JSON tensor encoding and its error JSON ({"error": ...}, HTTP code from the gRPC
  code as http_server.cc maps it);
- gRPC: PredictionService Predict, Classify, Regress, MultiInference and GetModelMetadata;
  ModelService GetModelStatus;
- Prometheus metrics (serving/metrics.py) on the REST port when a --monitoring_config_file
  enables them: TF Serving's request counts, request and runtime latencies and SavedModel load
  attempts, under TF Serving's names and labels.
HTTP as TF Serving's evhttp server: keep-alive, chunked and gzip bodies (un-gzipped up to 100 MB),
many concurrent connections; a plain body over 100 MB is the stand-in's own 413, and JSON
nested deeper than Python's parser reads is a 400 (`http_body`, `json_codec.TOO_DEEP`).
Versions follow TF Serving's default policy: the newest version is loaded; while it loads, or
if its load or warm-up fails, the version served before stays served (availability
preserving); a failed version is reported with state END and its error, and retried on the
next polls up to 5 times (--max_num_load_retries); a new push is found by polling the base
path, as --file_system_poll_wait_seconds does. With a model config file (--model_config_file,
the one the Pusher writes: contracts/model_config.py) the versions its `specific` policy lists
are loaded and the others unloaded, its `version_labels` route `/labels/<l>` and gRPC's
`version_label`, and the file is read again every --model_config_file_poll_wait_seconds. The
labels are checked as server_core.cc checks them: against the versions available before the
config's new ones load, a refused config changing nothing (its message logged as TF Serving
logs it: "PollFilesystemAndReloadConfig failed to ReloadConfig: Request to assign label to
version ..."); --allow_version_labels_for_unavailable_models is on for `tfxp serve` (a new
label may name a version still loading; a label that moves may not). An unlabelled request
gets the highest available version (ServableRequest::Latest).

What it does NOT emulate: batching (--enable_batching), version policies all and
num_versions > 1, more than one model in a config file (the stand-in serves the config's entry
for its model, from its --model-base-path), the load retry interval (retries follow the poll
interval), unloading versions whose directories are removed, request timeouts, the signature
method-name check flag (off, as by default), SSL, gRPC channel arguments,
TFRT and TF-Lite, the SessionService API, and platform configs. Error messages are TF
Serving's, except where components/serving_check/tf_serving_requests.py says otherwise and for
JSON syntax errors (Python's parser reports them, mapped to rapidjson's wording where it is
clear).

The modules: `repository` (the versions of one model, loaded, served and retired, and the
calls on them), `http_body` (the HTTP server and body reading the logging proxy shares),
`json_codec` (TF Serving's JSON tensor encoding, which serving/logging_proxy.py
reads requests with too), `rest` and `grpc_server` (the two APIs over a repository) and
`server` (both servers and the poll for pushes, as `tfxp serve` starts them).
"""
