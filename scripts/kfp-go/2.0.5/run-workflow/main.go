// Command run-workflow prints the Argo Workflow that KFP's API server creates for a run of a
// compiled pipeline, by calling the API server's own code the way its CreateRun does
// (backend/src/apiserver/resource/resource_manager.go): template.New on the uploaded YAML
// (PipelineSpec plus the Kubernetes platform spec as a second document), RunWorkflow with the
// run's parameters and pipeline root, and the execution spec's Validate. It stops where the API
// server would create the Workflow in Kubernetes.
//
// KFP's own `compiler` command passes no platform spec to argocompiler.Compile, so the PVC mount,
// pull policy and secrets reach a Workflow only through this path.
//
// Usage: run-workflow -pipeline FILE [-parameters JSON] [-pipeline_root ROOT] [-run_id ID] [-namespace NS]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/kubeflow/pipelines/backend/src/apiserver/model"
	"github.com/kubeflow/pipelines/backend/src/apiserver/template"
)

func main() {
	pipeline := flag.String("pipeline", "", "the compiled pipeline YAML, as uploaded")
	parameters := flag.String("parameters", "{}", "the run's parameters, a JSON object")
	pipelineRoot := flag.String("pipeline_root", "", "the run's pipeline root")
	runID := flag.String("run_id", "00000000-0000-0000-0000-000000000000", "the run's id (KFP makes a UUID)")
	namespace := flag.String("namespace", "kubeflow", "the run's namespace")
	flag.Parse()
	if *pipeline == "" {
		fail("-pipeline FILE is required")
	}
	manifest, err := os.ReadFile(*pipeline)
	if err != nil {
		fail("reading the pipeline: %v", err)
	}
	var values map[string]interface{}
	if err := json.Unmarshal([]byte(*parameters), &values); err != nil {
		fail("-parameters is not a JSON object: %v", err)
	}
	tmpl, err := template.New(manifest)
	if err != nil {
		fail("the API server refuses the pipeline: %v", err)
	}
	run := &model.Run{UUID: *runID, DisplayName: "run-workflow", Namespace: *namespace}
	run.PipelineSpec.RuntimeConfig = model.RuntimeConfig{Parameters: *parameters, PipelineRoot: *pipelineRoot}
	spec, err := tmpl.RunWorkflow(run, template.RunWorkflowOptions{RunId: *runID})
	if err != nil {
		fail("the API server refuses the run: %v", err)
	}
	if err := spec.Validate(false, false); err != nil {
		fail("the API server's validation of the Workflow fails: %v", err)
	}
	spec.SetExecutionNamespace(*namespace)
	fmt.Println(spec.ToStringForStore())
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "run-workflow: "+format+"\n", args...)
	os.Exit(2)
}
