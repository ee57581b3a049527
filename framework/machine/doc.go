// Package machine turns a resolved template and its image into a running,
// provisioned guest, and leaves nothing behind: a qcow2 overlay, per-run SSH
// keys (the guest host key is generated here and pinned), a cloud-init seed,
// QEMU with the chosen accelerator, then readiness in named phases (kernel,
// userspace, ssh, cloud-init, probes), each with its own timeout and measured
// duration, failing fast when QEMU exits or the console shows a panic.
// Artifacts (console, argv, QMP events, phase timings, guest logs) go to a
// directory per machine.
package machine
