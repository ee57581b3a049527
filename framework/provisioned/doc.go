// Package provisioned keeps guests as provisioning left them, so that the
// next verification of the same template starts from there instead of
// provisioning again: a qcow2 disk holding an internal VM snapshot of the
// ready guest (RAM and devices, taken with savevm), the SSH keys it
// trusts, and the seed it booted with.
//
// An entry is keyed by a hash of everything provisioning depends on (image
// digest, the resolved template, the rendered user-data, the machine
// shape); a change to any of them is a different key, so an entry is never
// stale, only unused (prune it with the cache).
package provisioned
