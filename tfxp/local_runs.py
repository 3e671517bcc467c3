"""The pipeline run on this machine: `init`, `run`, `add-span`, `export-schema`."""

from __future__ import annotations

import contextlib
import os

from pipeline.config import ConfigError, PipelineConfig
from tfxp.commands import EXIT_REFUSED, Commands


def register(commands: Commands) -> None:
    init = commands.add(
        "init", _init, "write a commented config inferred from a CSV file and its label column", takes_config=False
    )
    init.add_argument("csv", help="the CSV file (or .csv.gz, a directory of them, or a glob in quotes)")
    init.add_argument("--label", required=True, metavar="COLUMN", help="the column the model predicts")
    init.add_argument("--output", "-o", metavar="FILE", help="write the config there (default: print it)")
    run_cmd = commands.add(
        "run",
        run,
        "run the whole pipeline locally (Beam DirectRunner, SQLite ML Metadata); with nothing changed "
        "since the last finished run, print that run's summary instead",
        commands.run_options,
    )
    run_cmd.description = (
        "Run the whole pipeline locally. When nothing it reads changed since the last finished run "
        "(the config, the code, the installed packages, the data, the serving directory, logged "
        "requests, the ML Metadata store), print that run's summary and exit as it did, without "
        "starting TFX; its record is <output_dir>/metadata/<pipeline>/last-run.json."
    )
    run_cmd.add_argument(
        "--force",
        action="store_true",
        help="run the pipeline even if nothing changed since the last finished run (which is otherwise "
        "not run again: its summary is printed, and the command exits as it did)",
    )
    add_span = commands.add(
        "add-span", _add_span, "add a CSV drop as the next span under data.path, then run", commands.run_options
    )
    add_span.add_argument("file", help="the CSV file of the new drop")
    add_span.add_argument("--no-run", action="store_true", help="only add the span")
    export = commands.add(
        "export-schema",
        _export_schema,
        "write the latest inferred schema to a file, to curate and import with schema.path",
    )
    export.add_argument(
        "--output", "-o", default="schema/schema.pbtxt", help="where to write it (default schema/schema.pbtxt)"
    )


def _init(args, _config: None) -> int:
    from pipeline.init_config import infer_config

    if args.output and os.path.isdir(args.output):
        raise ConfigError(f"--output {args.output} is a directory; give a file name, e.g. {args.output}/config.yaml")
    text = infer_config(args.csv, args.label, args.output)
    if not args.output:
        print(text, end="")
        return 0
    # Written whole under a temporary name, then renamed: a failure leaves no half config behind.
    partial = f"{args.output}.partial"
    try:
        with open(partial, "w") as f:
            f.write(text)
        os.replace(partial, args.output)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise ConfigError(f"cannot write {args.output}: {err.strerror}; give --output a path you can write") from None
    print(f"wrote {args.output}; run it with: tfxp run --config {args.output}")
    return 0


def run(args, config: PipelineConfig) -> int:
    """`tfxp run`; also what `add-span` and `monitor --retrain` end with. 0 when the run pushed
    its model or found it already served, EXIT_REFUSED when it completed and pushed nothing
    (the summary says why); a failed step raises.

    Unless `--force`: when every input is as the last finished run left it (its record,
    pipeline/run_fingerprint.py), that run's summary is printed and its exit code returned,
    without importing TFX (about 7 s of CPU), running anything or notifying again."""
    start = None  # the inputs as this run reads them (pipeline/run_fingerprint.py)
    if config.enable_cache:
        force = getattr(args, "force", False)  # add-span and monitor --retrain have no --force
        reused, start = _reuse(config, check=not force)
        if reused is not None:
            return reused
    from ops import doctor
    from pipeline import local_runner, notify

    outcome: dict = {}
    try:
        log_path = local_runner.run(
            config,
            verbose=args.verbose,
            wait_lock=args.wait_lock,
            notes=doctor.leftover_notes,
            finished=lambda log: outcome.update(_finish(config, log, start)),
        )
    except Exception as err:
        # The error itself still ends the command (main's one line and exit code).
        notify.notify(config, notify.RUN_FAILED, f"run of {config.pipeline_name} failed: {err}", {"error": str(err)})
        raise
    latest = outcome.get("latest")
    if outcome["exit_code"] == EXIT_REFUSED:
        reasons = latest.failures or ["the summary above says why"]
        notify.notify(
            config,
            notify.RUN_REFUSED,
            f"run {latest.run_id} of {config.pipeline_name} pushed nothing: {reasons[0]}",
            {"run_id": latest.run_id, "reasons": reasons, "log": log_path},
        )
    return outcome["exit_code"]


def _reuse(config: PipelineConfig, check: bool = True) -> tuple[int | None, dict | None]:
    """(the exit code of the last finished run, after printing its summary, or None when the
    pipeline must run; the inputs as they are now). With `check`, a run whose every input is as
    the last finished run left it is not run again; a miss prints one line saying what changed.
    Imports nothing of TFX, TensorFlow or Beam (tests/tfxp/test_cached_run.py checks)."""
    from pipeline import run_fingerprint, run_lock

    record = run_fingerprint.load(run_fingerprint.record_path(config)) if check else None
    if record is not None and run_lock.holder_of(config.output_dir) is not None:
        record = None  # a run in progress: the real path waits for it or says who holds the lock
    try:
        inputs = run_fingerprint.run_inputs(config)
    except (OSError, ConfigError):  # a missing or unreadable input: the run's own checks say
        return None, None  # what is wrong, in one line, and notify; no record is saved for it
    if record is None:
        return None, inputs
    last = f"run {record.get('run_id')} (finished {record.get('finished')})"
    changed = run_fingerprint.differences(record, inputs)
    if changed:
        print(f"changed since {last}: {', '.join(changed)}; running the pipeline", flush=True)
        return None, inputs
    print(f"nothing changed since {last}: its summary follows; tfxp run --force runs the pipeline again\n")
    print(record["summary"])
    return record["exit_code"], inputs


def _finish(config: PipelineConfig, log_path: str, start: dict | None) -> dict:
    """After a run that completed, holding its lock: prints the summary read back from ML
    Metadata and saves it with the run's inputs (`start`: as it read them) as the run left them
    (AnomaliesGate's statistics, the store), for the next run to reuse if nothing changes. An
    input the run changed itself (a push, a newly accepted span) is kept as it was at the
    start, so the next run, which acts on it, is a real one."""
    import datetime

    from ops.runs import format_run, runs  # reading the evaluation imports TensorFlow: after the run
    from pipeline import run_fingerprint

    latest = runs(config.metadata_path, config.pipeline_name, limit=1)
    parts = [f"Pipeline finished; TFX log: {log_path}\n"]
    if latest:
        parts.append(format_run(latest[0]))
    parts.append(f"\nServing directory (TF Serving model base path): {config.serving_dir}")
    summary = "\n".join(parts)
    print("\n" + summary, flush=True)
    refused = bool(latest) and not latest[0].pushed_to and not latest[0].already_served
    exit_code = EXIT_REFUSED if refused else 0
    if latest and start is not None:
        path = run_fingerprint.record_path(config)
        try:
            run_fingerprint.save(
                path,
                run_fingerprint.record_inputs(start, run_fingerprint.run_inputs(config)),
                summary,
                run_id=latest[0].run_id,
                finished=datetime.datetime.now().astimezone().isoformat(sep=" ", timespec="seconds"),
                exit_code=exit_code,
            )
        except (OSError, ConfigError) as err:  # the outcome stands; only the next run's shortcut is lost
            print(f"warning: could not save {path} ({err}); the next run will run the pipeline again")
    return {"latest": latest[0] if latest else None, "exit_code": exit_code}


def _add_span(args, config: PipelineConfig) -> int:
    from pipeline import preflight
    from pipeline.spans import add_span

    if config.data.format.value != "csv":
        raise ConfigError("add-span adds CSV drops; data.format is " + config.data.format.value)
    columns = preflight.csv_header(args.file)
    preflight.check_columns(config, columns, args.file)
    span, path = add_span(config, args.file)
    print(f"added span {span}: {path}")
    return 0 if args.no_run else run(args, config)


def _export_schema(args, config: PipelineConfig) -> int:
    from ops.export_schema import export_schema

    written = export_schema(config, os.path.abspath(args.output))
    print(
        f"wrote {written}\nEdit it (domains, presence, value ranges), commit it, and run with "
        f"--set schema.path={args.output} (or set schema.path in the config)."
    )
    return 0
