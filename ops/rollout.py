"""`tfxp promote`, `tfxp rollback` and `tfxp canary`: move the labels of TF Serving's model config
(contracts/model_config.py) beside the versions.

- promote [VERSION|LABEL]: `stable` moves to the canary (or the version given), the old stable
  becomes `previous`, after the version's live metrics pass `tfxp monitor`'s thresholds on
  traffic logged as answered by that version (`--skip-checks` skips that, and says so);
- rollback [VERSION]: `stable` moves back to `previous` (or to VERSION, a version still on disk);
  a canary that was the bad stable goes back with it. With no model config (a serving directory
  from before rollouts), VERSION is pushed anew as the newest, as rollback did before;
- canary VERSION: `canary` moves to a version the config lists (a push whose label could not
  move yet).

A label only ever names a version that the current config already loads (TF Serving's rule,
server_core.cc); with `pusher.serving_url` the version must also be AVAILABLE there. A label
change is written atomically, in one write; a version to load first is listed in a write of its
own, and the label waits for it. Bad input (a version not on disk or not loaded, a label that
does not exist, checks that fail) is one ConfigError line, with nothing written. Every change
holds the output directory's run lock, so a push and a promote never interleave.
"""

from __future__ import annotations

import dataclasses
import os

from contracts import model_config
from contracts.model_config import CANARY, PREVIOUS, STABLE, ModelConfig
from contracts.serving_dir import served_versions
from pipeline import notify, run_lock
from pipeline.config import ConfigError, PipelineConfig


@dataclasses.dataclass
class Change:
    """What a label command did: the config before and after, and what it says."""

    before: ModelConfig
    after: ModelConfig
    message: str


def current(config: PipelineConfig) -> ModelConfig:
    """The model config, or ConfigError when there is none (nothing pushed with rollouts yet)."""
    try:
        found = model_config.read_config(config.serving_dir, config.model_name)
    except model_config.ModelConfigError as err:
        raise ConfigError(str(err)) from None
    if found is None:
        raise ConfigError(
            f"no model config in {config.serving_dir} ({model_config.CONFIG_FILE}): push a model first (tfxp run)"
        )
    return found


def resolve(found: ModelConfig, target: str | None, default_label: str) -> int:
    """A version from a version number, a label name or (None) `default_label`: one line when
    the label does not exist or the version is not one the config loads."""
    text = default_label if target is None else str(target)
    if text.isdigit():
        version = int(text)
        if version not in found.versions:
            raise ConfigError(
                f"version {version} is not served (the model config loads "
                f"{', '.join(map(str, found.versions)) or 'none'}); give one of those or a label"
            )
        return version
    if text not in found.labels:
        raise ConfigError(
            f"label '{text}' does not exist; labels: "
            + (", ".join(f"{k}={v}" for k, v in sorted(found.labels.items())) or "none")
        )
    return found.labels[text]


def _check_available(config: PipelineConfig, version: int) -> None:
    """With pusher.serving_url: the version must be AVAILABLE there now (TF Serving's rule)."""
    if version not in served_versions(config.serving_dir):
        raise ConfigError(f"version {version} is not a complete SavedModel in {config.serving_dir}")
    url = config.pusher.serving_url
    if url:
        state = model_config.version_state(url, config.model_name, version)
        if state != "AVAILABLE":
            raise ConfigError(
                f"{model_config.not_available_message(version, config.model_name)}: it is {state} at "
                f"{url} (pusher.serving_url); wait for it to load, then run this again"
            )


def _write(config: PipelineConfig, before: ModelConfig, after: ModelConfig) -> None:
    for version in set(after.labels.values()) - set(before.versions):
        raise ConfigError(model_config.not_available_message(version, config.model_name))
    for version in set(after.labels.values()):
        _check_available(config, version)
    model_config.write_config(config.serving_dir, after)


def live_check(config: PipelineConfig, version: int, window: str | None = None) -> str | None:
    """Why `version`'s live metrics do not allow a promotion, or None when they pass:
    `tfxp monitor`'s thresholds on the requests logged as answered by `version`."""
    from ops.monitoring.monitor import monitor

    result = monitor(config, window, version=version)
    if result.labelled < config.monitor.min_labelled:
        return (
            f"not enough labelled canary traffic to judge version {version}: {result.labelled} labelled "
            f"requests answered by it in the window, fewer than monitor.min_labelled "
            f"({config.monitor.min_labelled}); send traffic to /labels/canary and add ground truth "
            "(tfxp feedback), or --skip-checks"
        )
    if result.findings:
        more = f" (and {len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
        return f"version {version} fails tfxp monitor's thresholds: {result.findings[0]}{more}; not promoted"
    return None


def promote(
    config: PipelineConfig, target: str | None = None, skip_checks: bool = False, window: str | None = None
) -> Change:
    with run_lock.hold(config.output_dir, command="promote"):
        before = current(config)
        version = resolve(before, target, CANARY)
        stable = before.label(STABLE)
        if version == stable:
            raise ConfigError(f"version {version} is already stable; nothing changed")
        if skip_checks:
            checked = "live checks skipped (--skip-checks)"
        else:
            why = live_check(config, version, window)
            if why:
                raise ConfigError(why)
            checked = "live metrics pass tfxp monitor's thresholds"
        after = before.relabelled(stable=version, previous=stable)
        _write(config, before, after)
    change = Change(before, after, f"version {version} is stable (was {stable}); {checked}")
    notify.notify(
        config,
        notify.PROMOTED,
        f"{config.model_name}: {change.message}",
        {"version": version, "previous": stable, "labels": after.labels, "skip_checks": skip_checks},
    )
    return change


def rollback(config: PipelineConfig, target: str | None = None) -> Change:
    with run_lock.hold(config.output_dir, command="rollback"):
        before = current(config)
        stable = before.label(STABLE)
        if target is None:
            if before.label(PREVIOUS) is None:
                raise ConfigError(
                    "no previous stable version is recorded (label 'previous'); give the VERSION to roll back to"
                )
            version = before.labels[PREVIOUS]
        elif str(target).isdigit() and int(target) not in before.versions:
            version = int(target)
            if version not in served_versions(config.serving_dir):
                raise ConfigError(
                    f"version {version} is not in {config.serving_dir}; versions there: "
                    f"{', '.join(map(str, served_versions(config.serving_dir))) or 'none'}"
                )
            # Not loaded now: listed first, labelled once loaded (TF Serving's rule).
            listed = before.listing(version)
            model_config.write_config(config.serving_dir, listed)
            _wait_loaded(config, version)
            before = listed
        else:
            version = resolve(before, target, PREVIOUS)
        if version == stable:
            raise ConfigError(f"version {version} is already stable; nothing changed")
        canary = before.label(CANARY)
        after = before.relabelled(stable=version, previous=None, canary=version if canary in (stable, None) else canary)
        _write(config, before, after)
    change = Change(before, after, f"version {version} is stable again (was {stable})")
    notify.notify(
        config,
        notify.ROLLED_BACK,
        f"{config.model_name}: {change.message}",
        {"version": version, "from": stable, "labels": after.labels},
    )
    return change


def _wait_loaded(config: PipelineConfig, version: int) -> None:
    url = config.pusher.serving_url
    if not url:
        raise ConfigError(
            f"version {version} is listed in the model config now; once TF Serving has loaded it, run "
            f"`tfxp rollback {version}` again (set pusher.serving_url to let rollback wait for it)"
        )
    state = model_config.wait_available(url, config.model_name, version, config.pusher.label_wait_seconds)
    if state != "AVAILABLE":
        raise ConfigError(
            f"version {version} is {state} at {url} after {config.pusher.label_wait_seconds:g} s "
            "(pusher.label_wait_seconds); stable is unchanged"
        )


def canary(config: PipelineConfig, target: str) -> Change:
    with run_lock.hold(config.output_dir, command="canary"):
        before = current(config)
        version = resolve(before, target, CANARY)
        if before.label(CANARY) == version:
            raise ConfigError(f"version {version} is already the canary; nothing changed")
        after = before.relabelled(canary=version)
        _write(config, before, after)
    return Change(before, after, f"version {version} is the canary (was {before.label(CANARY)})")


def describe(found: ModelConfig, serving_dir: str) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(found.labels.items())) or "none"
    path = os.path.join(serving_dir, model_config.CONFIG_FILE)
    return f"labels: {labels}; loaded: {', '.join(map(str, found.versions))} ({path})"
