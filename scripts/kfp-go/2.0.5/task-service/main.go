// Command task-service is a stand-in for the one service of KFP's API server that the driver
// and the launcher call: the v1beta1 TaskService that backs KFP's cache
// (backend/src/v2/cacheutils/cache.go). It is served with KFP's own generated gRPC code
// (backend/api/v1beta1/go_client). ListTasksV1 answers the one filter the cache client sends
// (EQUALS on fingerprint, pipelineName and namespace), newest first, as the API server's task
// store does; any other filter or sort is refused. Tasks are kept in a JSON file, so the cache
// outlives a run as the API server's database does.
//
// Usage: task-service -addr 127.0.0.1:0 -store FILE   (prints "listening on HOST:PORT", then serves)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"

	api "github.com/kubeflow/pipelines/backend/api/v1beta1/go_client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

type server struct {
	api.UnimplementedTaskServiceServer
	mu    sync.Mutex
	store string
	tasks []*api.Task
}

func (s *server) CreateTaskV1(ctx context.Context, req *api.CreateTaskRequest) (*api.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	task := req.GetTask()
	if task.GetFingerprint() == "" || task.GetMlmdExecutionID() == "" {
		return nil, status.Error(codes.InvalidArgument, "a task needs a fingerprint and an ML Metadata execution id")
	}
	task.Id = strconv.Itoa(len(s.tasks) + 1)
	s.tasks = append(s.tasks, task)
	fmt.Fprintf(os.Stderr, "CreateTaskV1 fingerprint=%s execution=%s\n", task.Fingerprint, task.MlmdExecutionID)
	return task, s.save()
}

func (s *server) ListTasksV1(ctx context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	filter := &api.Filter{}
	if err := protojson.Unmarshal([]byte(req.GetFilter()), filter); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "filter: %v", err)
	}
	if req.GetSortBy() != "created_at desc" {
		return nil, status.Errorf(codes.Unimplemented, "sort %q: only \"created_at desc\" is served here", req.GetSortBy())
	}
	want := map[string]string{}
	for _, p := range filter.GetPredicates() {
		if p.GetOp() != api.Predicate_EQUALS || p.GetStringValue() == "" {
			return nil, status.Errorf(codes.Unimplemented, "predicate %v: only EQUALS on a string is served here", p)
		}
		want[p.GetKey()] = p.GetStringValue()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []*api.Task
	for _, t := range s.tasks {
		fields := map[string]string{"fingerprint": t.Fingerprint, "pipelineName": t.PipelineName, "namespace": t.Namespace}
		match := true
		for key, value := range want {
			got, known := fields[key]
			if !known {
				return nil, status.Errorf(codes.Unimplemented, "filter key %q is not served here", key)
			}
			match = match && got == value
		}
		if match {
			found = append(found, t)
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		return found[i].GetCreatedAt().AsTime().After(found[j].GetCreatedAt().AsTime())
	})
	if n := int(req.GetPageSize()); n > 0 && len(found) > n {
		found = found[:n]
	}
	fmt.Fprintf(os.Stderr, "ListTasksV1 %v: %d found\n", want, len(found))
	return &api.ListTasksResponse{Tasks: found, TotalSize: int32(len(found))}, nil
}

func (s *server) save() error {
	var lines []json.RawMessage
	for _, t := range s.tasks {
		b, err := protojson.Marshal(t)
		if err != nil {
			return err
		}
		lines = append(lines, b)
	}
	b, err := json.Marshal(lines)
	if err != nil {
		return err
	}
	return os.WriteFile(s.store, b, 0o644)
}

func (s *server) load() error {
	b, err := os.ReadFile(s.store)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	var lines []json.RawMessage
	if err := json.Unmarshal(b, &lines); err != nil {
		return fmt.Errorf("%s: %w", s.store, err)
	}
	for _, line := range lines {
		t := &api.Task{}
		if err := protojson.Unmarshal(line, t); err != nil {
			return fmt.Errorf("%s: %w", s.store, err)
		}
		s.tasks = append(s.tasks, t)
	}
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "where to listen")
	store := flag.String("store", "", "the JSON file that keeps the tasks")
	flag.Parse()
	if *store == "" {
		fmt.Fprintln(os.Stderr, "task-service: -store FILE is required")
		os.Exit(2)
	}
	s := &server{store: *store}
	if err := s.load(); err != nil {
		fmt.Fprintf(os.Stderr, "task-service: %v\n", err)
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "task-service: %v\n", err)
		os.Exit(2)
	}
	g := grpc.NewServer()
	api.RegisterTaskServiceServer(g, s)
	fmt.Printf("listening on %s\n", listener.Addr())
	if err := g.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "task-service: %v\n", err)
		os.Exit(1)
	}
}
