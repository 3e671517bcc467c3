"""TF Serving's model config file beside the versions: which versions are loaded and which version
each label (`stable`, `canary`, `previous`) names.

The file is a text-format `ModelServerConfig` (tensorflow_serving/config/model_server_config.proto)
with one `model_config_list` entry: `model_version_policy { specific { versions ... } }` and
`version_labels`. TF Serving reads it with `--model_config_file` and re-reads it every
`--model_config_file_poll_wait_seconds`; the stand-in (serving/standin) reads it the same way.
The Pusher (components/atomic_pusher) and `tfxp promote` / `rollback` (ops/rollout.py) write it
through `write_config` only: a temporary file in the same directory, synced, then renamed over the
old one, so a reader sees the old file or the new one, never half of one.

TF Serving's rule (tensorflow_serving/model_servers/server_core.cc, UpdateModelVersionLabelMap):
a label may only name a version that is AVAILABLE when the config is applied, and the labels are
checked before the config's new versions are loaded. A config that breaks the rule is refused
with FAILED_PRECONDITION "Request to assign label to version <v> of model <m>, which is not
currently available for inference", and as the same file is re-read on each poll the new
versions never load either (tensorflow/serving#1230, #1413). With
`--allow_version_labels_for_unavailable_models` a label that does not exist yet may name an
unavailable version; moving an existing label to one is still refused. So a label moves in two
writes: first the version is listed (loaded), then, once it is available, the label names it
(`plan_push`). No TensorFlow at import; the protos are read inside the functions.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

from contracts.serving_dir import sync_dir

CONFIG_FILE = "models.config"  # <serving_dir>/models.config: TF Serving takes only all-digit names as versions
STABLE, CANARY, PREVIOUS = "stable", "canary", "previous"
LABELS = (STABLE, CANARY, PREVIOUS)


class ModelConfigError(ValueError):
    """A model config file that cannot be used, or a label change TF Serving would refuse."""


def not_available_message(version: int, model: str) -> str:
    """server_core.cc UpdateModelVersionLabelMap's FAILED_PRECONDITION message."""
    return (
        f"Request to assign label to version {version} of model {model}, which is not currently available for inference"
    )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One model's entry: its name, base path, the versions loaded and the labels."""

    name: str
    base_path: str
    versions: tuple[int, ...] = ()  # model_version_policy.specific.versions, ascending; () = latest
    labels: dict[str, int] = dataclasses.field(default_factory=dict)

    def label(self, name: str) -> int | None:
        return self.labels.get(name)

    def relabelled(self, **labels: int | None) -> ModelConfig:
        """A copy with `labels` set (None removes one) and the versions exactly those labelled."""
        merged = {k: v for k, v in {**self.labels, **labels}.items() if v is not None}
        return dataclasses.replace(self, labels=merged, versions=tuple(sorted(set(merged.values()))))

    def listing(self, *versions: int) -> ModelConfig:
        """A copy that also loads `versions` (labels unchanged)."""
        return dataclasses.replace(self, versions=tuple(sorted({*self.versions, *versions})))


def check_labels(config: ModelConfig) -> None:
    """Every label names a listed version: what this project writes, stricter than TF Serving
    (which checks availability on the server; see `plan_push` for the order of writes)."""
    for label, version in sorted(config.labels.items()):
        if config.versions and version not in config.versions:
            raise ModelConfigError(
                f"label '{label}' names version {version}, which the config does not load "
                f"(versions: {', '.join(map(str, config.versions))})"
            )


def render(config: ModelConfig) -> str:
    """The text-format ModelServerConfig."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    check_labels(config)
    message = model_server_config_pb2.ModelServerConfig()
    entry = message.model_config_list.config.add(name=config.name, base_path=config.base_path)
    entry.model_platform = "tensorflow"
    if config.versions:
        entry.model_version_policy.specific.versions.extend(config.versions)
    else:
        entry.model_version_policy.latest.num_versions = 1
    for label, version in sorted(config.labels.items()):
        entry.version_labels[label] = version
    header = (
        "# Written by the pipeline's Pusher and `tfxp promote` / `tfxp rollback`; TF Serving reads it\n"
        "# with --model_config_file. Edit it through those commands: a label must name a loaded version.\n"
    )
    return header + text_format.MessageToString(message)


def parse(text: str, model_name: str, where: str = "the model config") -> ModelConfig:
    """The entry of `model_name` in a text-format ModelServerConfig; ModelConfigError (one line)
    when the text does not parse, has no such model or uses a policy other than specific/latest."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    message = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as err:
        raise ModelConfigError(f"{where} is not a text-format ModelServerConfig: {err}") from None
    entries = [c for c in message.model_config_list.config if c.name == model_name]
    if not entries:
        names = ", ".join(c.name for c in message.model_config_list.config) or "none"
        raise ModelConfigError(f"{where} has no model '{model_name}' (models: {names})")
    entry = entries[0]
    policy = entry.model_version_policy.WhichOneof("policy_choice")
    if policy not in (None, "specific", "latest"):
        raise ModelConfigError(f"{where}: model_version_policy {policy} is not handled; use specific or latest")
    if policy == "latest" and entry.model_version_policy.latest.num_versions > 1:
        raise ModelConfigError(f"{where}: latest {{ num_versions > 1 }} is not handled; use specific versions")
    versions = tuple(sorted(entry.model_version_policy.specific.versions)) if policy == "specific" else ()
    return ModelConfig(entry.name, entry.base_path, versions, dict(entry.version_labels))


def config_path(serving_dir: str) -> str:
    return os.path.join(serving_dir, CONFIG_FILE)


def read_config(serving_dir: str, model_name: str) -> ModelConfig | None:
    """The model's entry in `<serving_dir>/models.config`, or None when there is no file."""
    path = config_path(serving_dir)
    if "://" in path:
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as f:
            text = f.read()
    else:
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
    return parse(text, model_name, path)


def labels_of(serving_dir: str, version: int) -> list[str]:
    """The labels that name `version` in `<serving_dir>/models.config` now, in LABELS' order
    ([] with no file or a file that does not parse: for summaries, which must not fail)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        with open(config_path(serving_dir)) as f:
            text = f.read()
        message = model_server_config_pb2.ModelServerConfig()
        text_format.Parse(text, message)
    except (OSError, text_format.ParseError):
        return []
    entries = message.model_config_list.config
    named = {label for entry in entries for label, v in entry.version_labels.items() if v == version}
    return [label for label in LABELS if label in named] + sorted(named - set(LABELS))


def write_config(serving_dir: str, config: ModelConfig) -> str:
    """Writes the config atomically: a temporary file beside it, synced, renamed over it (on
    object stores, gs:// and s3://, a rename is a copy: there it is not atomic)."""
    text = render(config)
    path = config_path(serving_dir)
    if "://" in path:
        import tensorflow as tf

        partial = f"{path}.partial"
        with tf.io.gfile.GFile(partial, "w") as f:
            f.write(text)
        tf.io.gfile.rename(partial, path, overwrite=True)
        return path
    os.makedirs(serving_dir, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=serving_dir, prefix=f".{CONFIG_FILE}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    sync_dir(serving_dir)
    return path


def plan_push(current: ModelConfig | None, name: str, base_path: str, version: int, rollout: str) -> list[ModelConfig]:
    """The configs a push writes, in order. The first lists (loads) the new version with the
    labels unchanged; the second moves the labels: `canary` to the new version (and `stable`
    too when there is none yet, or when `rollout` is "stable", the old stable then being
    `previous`). A label that already names another version may only move once the new version
    is available (see the module docstring): the caller waits for that between the two."""
    base = current or ModelConfig(name, base_path)
    first = base.listing(version)
    stable = base.label(STABLE)
    if stable is None or stable not in base.versions and base.versions:
        second = first.relabelled(stable=version, canary=version, previous=None)
    elif rollout == STABLE:
        second = first.relabelled(stable=version, canary=version, previous=stable)
    else:
        second = first.relabelled(canary=version)
    return [first, second]


def moves_a_label(before: ModelConfig, after: ModelConfig) -> bool:
    """Whether `after` points a label that `before` has at another version (TF Serving then
    needs the new version available first, whatever its flags)."""
    return any(label in before.labels and before.labels[label] != v for label, v in after.labels.items())


def stable_version(serving_dir: str, model_name: str, complete: list[int]) -> int | None:
    """The version production traffic gets: the `stable` label of the model config, or, with no
    config file (or no stable label), the newest complete version as TF Serving's default latest
    policy serves. `complete`: contracts.serving_dir.served_versions(serving_dir)."""
    try:
        config = read_config(serving_dir, model_name)
    except ModelConfigError:
        config = None
    stable = config.label(STABLE) if config is not None else None
    if stable is not None and stable in complete:
        return stable
    return complete[-1] if complete else None


def version_state(serving_url: str, model_name: str, version: int, timeout: float = 5.0) -> str:
    """The version's state on a TF Serving REST endpoint (GET /v1/models/<m>/versions/<v>:
    AVAILABLE, LOADING, ...), or why it could not be read, in a few words."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{serving_url.rstrip('/')}/v1/models/{urllib.parse.quote(model_name)}/versions/{version}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            statuses = json.loads(reply.read()).get("model_version_status") or []
    except urllib.error.HTTPError as err:
        return f"not found (HTTP {err.code})"
    except (OSError, ValueError) as err:
        return f"unreachable ({err})"
    states = [s.get("state") for s in statuses if str(s.get("version")) == str(version)]
    return states[0] if states else "not found"


def wait_available(serving_url: str, model_name: str, version: int, seconds: float, step: float = 0.5) -> str:
    """Polls until `version` is AVAILABLE at `serving_url` or `seconds` pass; its last state."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        state = version_state(serving_url, model_name, version)
        if state == "AVAILABLE" or time.monotonic() >= deadline:
            return state
        time.sleep(step)
