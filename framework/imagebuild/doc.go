// Package imagebuild builds Debian guest images locally from Debian's
// archive: mmdebstrap (minbase, root mode) into a directory, a rootfs tuned
// for a fast cloud-init boot under QEMU (Customize), `mkfs.ext4 -d` (no loop
// device; the image is never mounted) and `qemu-img convert` to qcow2, with
// the kernel and initrd beside it for direct kernel boot (KernelAppend).
//
// Builds are cached under <cache>/images/<key>/ (disk.qcow2, vmlinuz,
// initrd.img, meta.json with the provenance), keyed by a hash of the recipe
// (Plan), built in a temporary directory beside the entry and renamed into
// place, behind a per-entry lock (<key>.lock) so that concurrent builds of
// one recipe build it once.
package imagebuild
