//go:build tools

// Package build names the helm command so that go.mod and go.sum pin everything it needs.
// Nothing here is compiled: scripts/helm-build.sh builds helm.sh/helm/v4/cmd/helm from
// this module.
package build

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
