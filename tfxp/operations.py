"""Operating what the runs left, from ML Metadata and the serving directory: `lineage`,
`model-card`, `promote`, `rollback`, `canary`, `runs`, `doctor`."""

from __future__ import annotations

import os

from pipeline.config import ConfigError, PipelineConfig
from tfxp.commands import EXIT_FAILED, Commands


def register(commands: Commands) -> None:
    lineage = commands.add("lineage", _lineage, "what produced a pushed model: data spans, schema, hyperparameters")
    lineage.add_argument("version", nargs="?", type=int, help="a served version (default: the newest)")
    card = commands.add("model-card", _model_card, "print the path of a served version's model card")
    card.add_argument("version", nargs="?", type=int, help="a served version (default: the newest)")
    card.add_argument(
        "--format", choices=("md", "html", "json"), default="md", help="Markdown (default), HTML or the facts as JSON"
    )
    promote = commands.add(
        "promote",
        _promote,
        "move the stable label to the canary (or VERSION) once its live metrics pass tfxp monitor's thresholds",
    )
    promote.add_argument("version", nargs="?", help="a loaded version or a label (default: canary)")
    promote.add_argument(
        "--skip-checks", action="store_true", help="promote without checking the live metrics (says so)"
    )
    promote.add_argument("--window", help="the traffic window judged (default monitor.window)")
    rollback = commands.add(
        "rollback",
        _rollback,
        "move the stable label back to the previous stable (or to VERSION, a version still on disk)",
    )
    rollback.add_argument("version", nargs="?", help="the version to go back to (default: label previous)")
    canary = commands.add("canary", _canary, "move the canary label to a version the model config loads")
    canary.add_argument("version", help="a loaded version or a label")
    runs = commands.add("runs", _runs, "show the last runs recorded in ML Metadata")
    runs.add_argument("--last", type=int, default=3, help="how many runs to show (default 3)")
    doctor = commands.add(
        "doctor",
        _doctor,
        "report what killed runs left behind (partial pushes, artifacts of interrupted executions); --fix removes it",
    )
    doctor.add_argument("--fix", action="store_true", help="remove the leftovers (refused while a run is going)")


def _lineage(args, config: PipelineConfig) -> int:
    from ops.lineage import format_lineage, lineage

    print(format_lineage(lineage(config.metadata_path, config.pipeline_name, config.serving_dir, args.version)))
    return 0


def _model_card(args, config: PipelineConfig) -> int:
    from ops.model_card import card_path

    print(card_path(config.serving_dir, args.version, args.format))
    return 0


def _promote(args, config: PipelineConfig) -> int:
    from ops import rollout

    change = rollout.promote(config, args.version, args.skip_checks, args.window)
    print(change.message)
    print(rollout.describe(change.after, config.serving_dir))
    return 0


def _rollback(args, config: PipelineConfig) -> int:
    from contracts.model_config import read_config
    from ops import rollout

    if read_config(config.serving_dir, config.model_name) is None and args.version is not None:
        # A serving directory from before the model config: TF Serving serves the newest version.
        from ops.rollback import roll_back

        if not args.version.isdigit():
            raise ConfigError(f"'{args.version}' is not a version number; labels need a model config")
        new_version = roll_back(config, int(args.version))
        print(
            f"version {args.version} is served again, as version {new_version} "
            f"({os.path.join(config.serving_dir, str(new_version))}); TF Serving picks it up on its next poll"
        )
        return 0
    change = rollout.rollback(config, args.version)
    print(change.message)
    print(rollout.describe(change.after, config.serving_dir))
    return 0


def _canary(args, config: PipelineConfig) -> int:
    from ops import rollout

    change = rollout.canary(config, args.version)
    print(change.message)
    print(rollout.describe(change.after, config.serving_dir))
    return 0


def _runs(args, config: PipelineConfig) -> int:
    from ops.runs import format_run, runs
    from pipeline import run_lock

    live = run_lock.holder_of(config.output_dir) is not None  # else a RUNNING execution's run is gone
    found = runs(config.metadata_path, config.pipeline_name, limit=args.last, live_run=live)
    if not found:
        print(f"no runs of '{config.pipeline_name}' recorded in {config.metadata_path}")
    for run in found:
        print(format_run(run))
    return 0


def _doctor(args, config: PipelineConfig) -> int:
    from ops import doctor

    report = doctor.fix(config) if args.fix else doctor.check(config)
    print("\n".join(doctor.format_report(report)))
    return EXIT_FAILED if report.findings and not report.fixed else 0
