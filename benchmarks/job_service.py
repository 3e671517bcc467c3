"""Beam's pure-Python job service (`local_job_service_main`), as a pool of N external workers.

Two adjustments, both to the service process only:

- For an EXTERNAL environment, Beam's FnApiRunner tells the worker pool to connect back to
  `socket.getfqdn():port`. Inside the runtime's chroot the machine's host name (here `vm`)
  is not in /etc/hosts and there is no DNS, so workers time out connecting. The workers run
  on this machine, so the service reports `localhost`; on a host that resolves its own name
  this changes nothing.
- The job service runs each job with FnApiRunner.run_via_runner_api, which never reads
  `--direct_num_workers` (only FnApiRunner.run_pipeline does), so every job gets one SDK
  worker. `--sdk_workers N` sets the runner's worker count, as a Flink or Spark job server's
  parallelism would.

Usage: python -m benchmarks.job_service [--sdk_workers N] [local_job_service_main options]
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys


def main(argv: list[str]) -> None:
    from apache_beam.runners.portability import local_job_service_main
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    parser = argparse.ArgumentParser()
    parser.add_argument("--sdk_workers", type=int, default=1)
    args, rest = parser.parse_known_args(argv)

    socket.getfqdn = lambda name="": "localhost"
    init = fn_runner.FnApiRunner.__init__

    def init_with_workers(self, *a, **kw):
        init(self, *a, **kw)
        # Private: no public option reaches the job service's FnApiRunner (see the docstring).
        self._num_workers = args.sdk_workers

    fn_runner.FnApiRunner.__init__ = init_with_workers
    logging.basicConfig(level=logging.INFO)
    local_job_service_main.run(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
