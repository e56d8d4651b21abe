// Command etcd is the etcd server built from go.etcd.io/etcd/server/v3, which ships
// the server as a library (etcdmain) rather than a main package.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
