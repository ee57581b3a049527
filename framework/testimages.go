package framework

import (
	"bytes"
	"context"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/guestcatalog/guestcatalog/catalog"
	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/testimage"
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
	var data testImageData
	var err error
	if g.Arch == "" || g.Arch == catalog.HostArch() {
		data, err = g.run.testImages()
	} else {
		data, err = g.run.foreignTestImages(ctx, g.Arch)
	}
	Expect(err).NotTo(HaveOccurred(), "making the local busybox image on the host")
	g.Upload(ctx, data.rootfs, imgs.Rootfs, 0o644)
	g.Upload(ctx, data.oci, imgs.OCI, 0o644)
	g.uploaded = true
	return imgs
}

// foreignTestImages are the test images for a guest of another arch than
// the host's: the host's busybox cannot run there, so Debian's
// busybox-static for the guest's arch is fetched (once, into the cache).
func (r *Run) foreignTestImages(ctx context.Context, arch string) (testImageData, error) {
	bb, err := testimage.FetchBusybox(ctx, arch, r.cfg.CacheDir, "")
	if err != nil {
		return testImageData{}, err
	}
	var rootfs, oci bytes.Buffer
	if err := testimage.RootfsTar(&rootfs, bb); err != nil {
		return testImageData{}, err
	}
	if err := testimage.OCIArchiveFor(&oci, TestImageRef, rootfs.Bytes(), []string{"/bin/sh"}, testimage.GoArch(arch)); err != nil {
		return testImageData{}, err
	}
	return testImageData{rootfs.Bytes(), oci.Bytes()}, nil
}

// Shell is a script with extra environment variables.
func Shell(script string, env map[string]string) gexec.Cmd {
	return gexec.Cmd{Script: script, Env: env}
}
