//go:build tools

// Package tools pins the containerd commands a real test node runs; build them with
// `go build github.com/containerd/containerd/v2/cmd/<name>`.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
