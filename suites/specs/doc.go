// Package specs holds the engine specs, written once: `go test ./suites/...`
// wires them per engine in small suites, and `catalog verify` runs the very
// same tree in-process. One scenario per spec; the specs of one template
// share one booted guest (Ordered containers with BeforeAll).
package specs
