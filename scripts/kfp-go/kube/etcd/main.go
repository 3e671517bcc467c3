// Command etcd is etcd's server: the same entry point as etcd's own main package, which lives in
// etcd's root module (go.etcd.io/etcd/v3) rather than in go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
