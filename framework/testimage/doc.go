// Package testimage makes the container images the engine specs use, locally:
// a busybox root filesystem from Debian's busybox-static, packed as a plain
// rootfs tarball (docker/podman import) and as an OCI image archive
// (ctr/docker/podman load). No spec pulls from a registry.
package testimage
