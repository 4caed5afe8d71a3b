// Command etcd is etcd's own server entry point, built from the etcd server
// module pinned in go.mod (the release kube-apiserver is built against).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
