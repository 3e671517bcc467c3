"""Building, compiling and running the pipeline never imports `tfx.v1`: its package imports the
Vertex AI SDK (google.cloud.aiplatform) and every standard component, seconds of CPU that each
run and each Kubeflow step would pay (pipeline/pipeline.py imports TFX's own modules instead)."""

import subprocess
import sys
import textwrap


def test_the_pipeline_and_its_model_code_load_without_tfx_v1(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from pipeline import kubeflow_runner, local_runner
        from pipeline.config import load_config
        import models.model
        config = load_config(None, ["kubeflow.image=registry.example.com/ml/tfxp:1"])
        kubeflow_runner.compile_pipeline(config, {str(tmp_path / "p.yaml")!r})
        print(sorted(m for m in sys.modules if m == "tfx.v1" or m.startswith(("tfx.v1.", "google.cloud.aiplatform"))))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "p.yaml").stat().st_size > 0
    assert done.stdout.strip().splitlines()[-1] == "[]"
