"""Webhook notifications: `notify(config, event, text, details)` posts one event to `notify.url`.

Called when `tfxp run` fails or is refused (tfxp/local_runs.py), when `tfxp monitor` crosses a
threshold (tfxp/live_monitoring.py; on Kubernetes and Kubeflow too, where it runs `tfxp
monitor`) and when a compiled pipeline's step fails on Kubeflow (pipeline/kfp_executor.py, which
has no config: the environment's `ENV_URL` and `ENV_FORMAT`). A notification is
a side channel: a webhook that does not answer in time, refuses the request or cannot be
reached costs one line on stderr, and the caller's exit code and outputs stay what they were.
No TensorFlow, no third-party HTTP client: the standard library's urllib.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

from pipeline.config import NOTIFY_URL_ENV, NotifyConfig, NotifyFormat, PipelineConfig

# The events the project sends; a receiver routes on `event` in the JSON body.
RUN_FAILED = "run_failed"  # a step failed, or the run stopped on bad data
RUN_REFUSED = "run_refused"  # the run completed and pushed nothing: the Evaluator or a serving check refused
MONITOR_CROSSED = "monitor_crossed"  # `tfxp monitor` found live metrics, drift or health past a threshold
PROMOTED = "promoted"  # for `tfxp promote`
ROLLED_BACK = "rolled_back"  # for `tfxp rollback`
EVENTS = (RUN_FAILED, RUN_REFUSED, MONITOR_CROSSED, PROMOTED, ROLLED_BACK)

# Where a compiled pipeline's steps find the webhook (kubeflow.secrets can set them from a
# Kubernetes secret): the steps do not read the config file. ENV_URL is notify.url_env's default.
ENV_URL, ENV_FORMAT = NOTIFY_URL_ENV, "TFXP_NOTIFY_FORMAT"


def body(fmt: NotifyFormat, event: str, text: str, details: Mapping[str, Any], where: Mapping[str, str]) -> dict:
    """The request body: the generic JSON event, or Slack's `{"text": ...}`."""
    if fmt is NotifyFormat.SLACK:
        lines = [f"[{where.get('pipeline', 'tfxp')}] {text}"]
        lines += [f"• {key}: {value}" for key, value in details.items() if value not in (None, "", [], {})]
        return {"text": "\n".join(lines)}
    return {
        "event": event,
        **where,
        "text": text,
        "details": dict(details),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _shown(url: str) -> str:
    """The URL without its path and query, which for Slack and most webhooks is the secret."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def post(url: str, payload: dict, timeout: float) -> str | None:
    """POSTs `payload` as JSON; None when the webhook answered 2xx, else why not, in a few words."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "tfxp-notify"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
            return None
    except urllib.error.HTTPError as err:
        return f"answered HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, TimeoutError):
            return f"did not answer within {timeout:g} s"
        return f"could not be reached ({getattr(reason, 'strerror', None) or reason})"
    except TimeoutError:
        return f"did not answer within {timeout:g} s"
    except (OSError, ValueError) as err:  # a reset connection, a malformed answer
        return f"failed ({type(err).__name__}: {err})"


def send(
    settings: NotifyConfig,
    event: str,
    text: str,
    details: Mapping[str, Any] | None = None,
    where: Mapping[str, str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> bool:
    """Sends one event as `settings` say; True when a webhook took it. Never raises."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; events are: {', '.join(EVENTS)}")
    url = settings.url or environ.get(settings.url_env)
    if not url:
        if "url_env" in settings.model_fields_set:  # asked for, not there: say so
            _warn(f"notify.url_env names {settings.url_env}, which is not set; the {event} notification is not sent")
        return False
    if settings.url is None:
        try:
            NotifyConfig(url=url)
        except ValueError:
            _warn(f"{settings.url_env} is not an http:// or https:// URL; the {event} notification is not sent")
            return False
    try:
        payload = body(settings.format, event, text, details or {}, where or {})
        why = post(url, payload, settings.timeout_seconds)
    except Exception as err:  # noqa: BLE001 - a notification must never change the caller's outcome
        why = f"failed ({type(err).__name__}: {err})"
    if why is not None:
        _warn(f"the {event} notification to {_shown(url)} {why}; it is dropped")
        return False
    return True


def notify(config: PipelineConfig, event: str, text: str, details: Mapping[str, Any] | None = None) -> bool:
    """Posts `event` to the config's webhook, if any; True when it took it. Never raises for
    the webhook's sake (an unknown `event` is the caller's bug and raises ValueError)."""
    where = {"pipeline": config.pipeline_name, "model": config.model_name}
    return send(config.notify, event, text, details, where)


def from_environment(environ: Mapping[str, str] = os.environ) -> NotifyConfig:
    """The webhook settings a compiled step reads (ENV_URL, ENV_FORMAT); no URL: none."""
    fmt = environ.get(ENV_FORMAT, NotifyFormat.JSON.value)
    try:
        return NotifyConfig(url=environ.get(ENV_URL) or None, format=fmt)
    except ValueError as err:
        _warn(f"{ENV_URL}/{ENV_FORMAT} are not a usable webhook ({str(err).splitlines()[0]}); no notification is sent")
        return NotifyConfig()


def _warn(line: str) -> None:
    try:
        print(f"notify: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
