package framework

import (
	"context"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
)

// TestImageRef is the name of the local busybox image in every engine.
const TestImageRef = "localhost/guestcatalog/busybox:latest"

// TestImages are the local container images uploaded into a guest.
type TestImages struct {
	// Rootfs is a plain root filesystem tarball (docker/podman import).
	Rootfs string
	// OCI is an OCI image archive named TestImageRef (ctr import, load).
	OCI string
}

// UploadTestImages copies the busybox images into the guest (once per
// guest) and returns their paths there.
func (g *Guest) UploadTestImages(ctx context.Context) TestImages {
	GinkgoHelper()
	imgs := TestImages{Rootfs: "/var/tmp/guestcatalog/busybox-rootfs.tar", OCI: "/var/tmp/guestcatalog/busybox-oci.tar"}
	if g.uploaded {
		return imgs
	}
	data, err := g.run.testImages()
	Expect(err).NotTo(HaveOccurred(), "making the local busybox image on the host")
	g.Upload(ctx, data.rootfs, imgs.Rootfs, 0o644)
	g.Upload(ctx, data.oci, imgs.OCI, 0o644)
	g.uploaded = true
	return imgs
}

// Shell is a script with extra environment variables.
func Shell(script string, env map[string]string) gexec.Cmd {
	return gexec.Cmd{Script: script, Env: env}
}
