"""The `tfxp` command line, the top floor: it calls pipeline/, ops/ and serving/, and nothing imports it.

`main` holds the program (the parser, the config loaded once, one table from error to exit
code, the entry point); `commands` what the command groups share; one module per group:
`local_runs` (run, add-span, export-schema), `operations` (lineage, rollback, runs, doctor),
`kubeflow_pipelines` (compile, submit), `model_server` (serve, log-proxy, predict) and
`live_monitoring` (feedback, monitor, report).
"""
