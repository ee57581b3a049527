// Package framework is the assertion layer the suites use: it boots a
// template's guest (through framework/machine), reuses provisioned disks,
// and gives specs a Guest whose helpers assert with Gomega and name the
// template, the phase and the artifact path when they fail.
//
// It is the only framework package that imports Ginkgo or Gomega; its
// sub-packages return errors (see depcheck_test.go).
package framework
