// Prints what containerd gives a container by default: the bounding capabilities of its default OCI
// spec (pkg/oci, which the CRI plugin starts every Kubernetes container from) and the seccomp profile
// contrib/seccomp.DefaultProfile builds for that spec on this machine's architecture and kernel.
// test/fixtures/seccomp/README.md says how its output became a fixture. Run: go run . > out.json
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
)

func main() {
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "default"})
	if err != nil {
		panic(err)
	}
	out := map[string]any{
		"capabilities": spec.Process.Capabilities.Bounding,
		"profile":      seccomp.DefaultProfile(spec),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
