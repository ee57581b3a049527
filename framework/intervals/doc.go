// Package intervals holds the framework's named timeouts (default/wait-ssh,
// accel/kvm-stall, …): base values from an embedded YAML file, scaled per
// accelerator (TCG is slower than KVM), overridable by a user file and by
// environment variables, so that a slower machine needs a config change,
// never a code change.
package intervals
