# The two commands: `make run` (the whole pipeline on the bundled sample) and `make test`.
# Both build the runtime environment on first use (scripts/runtime.sh) and reuse it after.
RUNTIME := scripts/runtime.sh
PYTEST_ARGS ?=
ARGS ?=
ZOO_ARGS ?=

.PHONY: run test test-extended test-fast test-slow test-faults test-setup lint manifests env shell clean bench flink-cluster flink-stop test-flink spark-cluster spark-stop test-spark

run:  ## the whole pipeline, locally, on the bundled sample data
	$(RUNTIME) tfxp run $(ARGS)

bench:  ## the quick benchmark tier (each task vs scikit-learn on its split, binary also vs the TFX taxi template), then the zoo (public data sets, tfxp init's config vs scikit-learn)
	$(RUNTIME) python -m benchmarks quick $(ARGS)
	$(RUNTIME) python -m benchmarks zoo $(ZOO_ARGS)

test: image  ## every tier: lint and format check, manifests, unit, pipeline, faults, end-to-end, the compiled pipeline under kfp.local and KFP's Go compiler
	$(RUNTIME) ruff check .
	$(RUNTIME) ruff format --check .
	bash tests/faults/runtime_rbind.sh  # on the host: mounts below the checkout are seen inside the runtime
	bash tests/setup/runtime_paths.sh  # on the host: paths outside the checkout read the same inside
	scripts/check-manifests.sh
	$(RUNTIME) scripts/prometheus.sh  # Debian's prometheus and promtool, for the metrics and alert tests
	$(RUNTIME) scripts/mariadb.sh  # Debian's mariadb-server, the database of KFP's own API server (test_kfp_go_driver.py)
	rm -f build/reports/monitor-loop.html
	kfp_go=$$(scripts/kfp-binaries.sh 2.0.5) && TFXP_KFP_GO=$$kfp_go TFXP_IMAGE=$(IMAGE) \
	  scripts/podman-service.sh run $(RUNTIME) python -m pytest -m "not kills and not kfp_real and not extended" --durations=40 $(PYTEST_ARGS)
	tests/ops/monitoring/report_in_chromium.sh build/reports/monitor-loop.html build/reports/monitor-loop.png

test-fast:  ## unit and pipeline tests only (about 2 minutes)
	$(RUNTIME) scripts/prometheus.sh
	$(RUNTIME) python -m pytest -m "not slow" $(PYTEST_ARGS)

test-extended: image  ## what make test leaves out to stay inside CI's time, each covered there another way (pytest.ini's `extended`; about 12 minutes)
	TFXP_IMAGE=$(IMAGE) scripts/podman-service.sh run $(RUNTIME) python -m pytest -m extended $(PYTEST_ARGS)

test-slow: image  ## end-to-end tests only: the real pipeline locally and under kfp.local
	rm -f build/reports/monitor-loop.html
	TFXP_IMAGE=$(IMAGE) scripts/podman-service.sh run $(RUNTIME) python -m pytest -m "slow and not kills and not kfp_real" $(PYTEST_ARGS)
	tests/ops/monitoring/report_in_chromium.sh build/reports/monitor-loop.html build/reports/monitor-loop.png

test-faults:  ## fault tests only: full disks, the run lock, one-line OS errors, leftovers (tests/faults, tfxp doctor)
	bash tests/faults/runtime_rbind.sh
	$(RUNTIME) python -m pytest tests/faults tests/ops/test_doctor.py $(PYTEST_ARGS)

test-setup:  ## the setup paths built for real (minutes, network, 4 GB): a rootless root as an ordinary user, a plain venv
	bash tests/setup/rootless.sh  # on the host: as root it runs as a user it makes (tfxptest)
	$(RUNTIME) python -m pytest -m setup tests/setup $(PYTEST_ARGS)  # the venv path, inside the Debian 13 root

lint:  ## ruff's linter and format check (ruff.toml), as make test runs them
	$(RUNTIME) ruff check .
	$(RUNTIME) ruff format --check .  # `ruff format .` fixes it

manifests:  ## render kubernetes/ and check it offline (kubernetes-validate --strict, checkov)
	scripts/check-manifests.sh

env:  ## build (or check) the runtime environment
	$(RUNTIME) python -c "import tfx; print('tfx', tfx.__version__)"

shell:  ## a shell inside the runtime environment
	$(RUNTIME) bash

flink-cluster:  ## a local Flink 1.19 cluster (JobManager, 2 TaskManagers), Beam's job server, an SDK worker pool (scripts/flink/cluster.sh)
	mkdir -p build && scripts/flink/cluster.sh start

flink-stop:  ## stop what flink-cluster started
	scripts/flink/cluster.sh stop

test-flink:  ## the Beam components on the local Flink cluster, compared with the DirectRunner (tests/flink); starts the cluster and stops it
	mkdir -p build && scripts/flink/cluster.sh start
	$(RUNTIME) python -m pytest -m flink --basetemp=$(CURDIR)/build/test-flink tests/flink $(PYTEST_ARGS); status=$$?; scripts/flink/cluster.sh stop; exit $$status

spark-cluster:  ## a local Spark 3.5 standalone cluster (master, 1 worker), Beam's Spark job server (scripts/spark/cluster.sh)
	mkdir -p build && scripts/spark/cluster.sh start

spark-stop:  ## stop what spark-cluster started
	scripts/spark/cluster.sh stop

test-spark:  ## the Beam components on the local Spark cluster, compared with the DirectRunner (tests/spark); starts the cluster and stops it
	mkdir -p build && scripts/spark/cluster.sh start
	$(RUNTIME) python -m pytest -m spark --basetemp=$(CURDIR)/build/test-spark tests/spark $(PYTEST_ARGS); status=$$?; scripts/spark/cluster.sh stop; exit $$status

clean:  ## remove the pipeline outputs of `make run`
	rm -rf output

# ---------------------------------------------------------------- container image
IMAGE ?= localhost/tfx-kfp-pipeline:latest
BASE_IMAGE ?= localhost/tfxp-trixie-base
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
export CONTAINERS_CONF ?= $(CURDIR)/containers/containers.conf

.PHONY: base-image image

base-image:  ## a Debian 13 base image made from the runtime root (no registry needed)
	scripts/base-image.sh $(BASE_IMAGE)

image: base-image  ## the image every Kubeflow step runs in
	podman build --network host -v $(CA_BUNDLE):/etc/ssl/certs/ca-certificates.crt:ro \
	  --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) .

# ---------------------------------------------------------------- Kubeflow Pipelines' own Go backend
KFP_GO_VERSIONS ?= 2.0.5

.PHONY: kfp-binaries test-kfp-backend test-kfp-real

kfp-binaries:  ## KFP's compiler, driver, launcher-v2 and API server, SeaweedFS's weed, Kubernetes' kube-apiserver and etcd, built from the Go module proxy (cached; docs/kubeflow.md)
	scripts/kfp-binaries.sh --kube $(KFP_GO_VERSIONS)
	scripts/kfp-binaries.sh --check 2.5.0 2.17.0  # the releases the proxy refused: one line each

test-kfp-backend: image  ## KFP 2.0.5's own compiler, API server (on MariaDB), driver and launcher on our compiled pipeline, on a real kube-apiserver and etcd (about two minutes once built)
	$(RUNTIME) scripts/mariadb.sh
	kfp_go=$$(scripts/kfp-binaries.sh --kube 2.0.5) && TFXP_KFP_GO=$$kfp_go TFXP_IMAGE=$(IMAGE) scripts/podman-service.sh run \
	  $(RUNTIME) python -m pytest tests/kfp_backend/test_kfp_go_compiler.py tests/kfp_backend/test_kfp_go_driver.py tests/kfp_backend/test_argo_runner.py \
	  tests/kfp_backend/test_seaweedfs.py tests/kfp_backend/test_kfp_go_submit.py \
	  tests/kfp_backend/test_mlmd_grpc.py tests/kfp_backend/test_kube_api.py tests/kfp_backend/test_kube_apiserver.py $(PYTEST_ARGS)

test-kfp-real: image  ## the whole compiled pipeline, three runs created by KFP 2.0.5's own API server on a real kube-apiserver, every step through its driver and launcher (tests/kfp_backend/test_kfp_go_pipeline.py; minutes)
	$(RUNTIME) scripts/mariadb.sh
	rm -f build/kfp-go-pipeline-test/summary.txt
	kfp_go=$$(scripts/kfp-binaries.sh --kube 2.0.5) && TFXP_KFP_GO=$$kfp_go TFXP_IMAGE=$(IMAGE) scripts/podman-service.sh run \
	  $(RUNTIME) python -m pytest -m kfp_real tests/kfp_backend/test_kfp_go_pipeline.py $(PYTEST_ARGS); status=$$?; \
	  cat build/kfp-go-pipeline-test/summary.txt 2>/dev/null; exit $$status
