// Command s3-server serves an S3-compatible API on one address, for KFP's launcher in tests: the
// launcher reaches it with its own MinIO settings (MINIO_SERVICE_SERVICE_HOST/_PORT, path style,
// no TLS). It is gofakes3 (MIT licence) with its in-memory backend: a stand-in for a real object
// store such as SeaweedFS, which speaks the same protocol.
//
// Usage: s3-server -addr 127.0.0.1:0 -bucket NAME   (prints "listening on HOST:PORT", then serves)
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "where to listen")
	bucket := flag.String("bucket", "mlpipeline", "a bucket to create")
	flag.Parse()
	backend := s3mem.New()
	if err := backend.CreateBucket(*bucket); err != nil {
		fmt.Fprintf(os.Stderr, "s3-server: %v\n", err)
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3-server: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	if err := http.Serve(listener, gofakes3.New(backend).Server()); err != nil {
		fmt.Fprintf(os.Stderr, "s3-server: %v\n", err)
		os.Exit(1)
	}
}
