package framework

import (
	"bytes"
	"context"
	"sync"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/guestcatalog/guestcatalog/catalog"
	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/imagebuild"
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

var (
	imagesOnce sync.Once
	rootfsTar  []byte
	ociTar     []byte
	imagesErr  error
)

func buildTestImages() ([]byte, []byte, error) {
	imagesOnce.Do(func() {
		var rootfs, oci bytes.Buffer
		if imagesErr = testimage.RootfsTar(&rootfs, ""); imagesErr != nil {
			return
		}
		if imagesErr = testimage.OCIArchive(&oci, TestImageRef, rootfs.Bytes(), []string{"/bin/sh"}); imagesErr != nil {
			return
		}
		rootfsTar, ociTar = rootfs.Bytes(), oci.Bytes()
	})
	return rootfsTar, ociTar, imagesErr
}

// foreignTestImages are the test images for a guest of another arch than
// the host's: the host's busybox cannot run there, so Debian's
// busybox-static for the guest's arch is fetched (once, into the cache).
func foreignTestImages(ctx context.Context, arch string) ([]byte, []byte, error) {
	cacheDir := current().CacheDir
	if cacheDir == "" {
		d, err := imagebuild.DefaultCacheDir()
		if err != nil {
			return nil, nil, err
		}
		cacheDir = d
	}
	bb, err := testimage.FetchBusybox(ctx, arch, cacheDir, "")
	if err != nil {
		return nil, nil, err
	}
	var rootfs, oci bytes.Buffer
	if err := testimage.RootfsTar(&rootfs, bb); err != nil {
		return nil, nil, err
	}
	if err := testimage.OCIArchiveFor(&oci, TestImageRef, rootfs.Bytes(), []string{"/bin/sh"}, testimage.GoArch(arch)); err != nil {
		return nil, nil, err
	}
	return rootfs.Bytes(), oci.Bytes(), nil
}

// UploadTestImages copies the busybox images into the guest (once per
// guest) and returns their paths there.
func (g *Guest) UploadTestImages(ctx context.Context) TestImages {
	GinkgoHelper()
	imgs := TestImages{Rootfs: "/var/tmp/guestcatalog/busybox-rootfs.tar", OCI: "/var/tmp/guestcatalog/busybox-oci.tar"}
	if g.uploaded {
		return imgs
	}
	var rootfs, oci []byte
	var err error
	if g.Arch == "" || g.Arch == catalog.HostArch() {
		rootfs, oci, err = buildTestImages()
	} else {
		rootfs, oci, err = foreignTestImages(ctx, g.Arch)
	}
	Expect(err).NotTo(HaveOccurred(), "making the local busybox image on the host")
	g.Upload(ctx, rootfs, imgs.Rootfs, 0o644)
	g.Upload(ctx, oci, imgs.OCI, 0o644)
	g.uploaded = true
	return imgs
}

// Shell is a script with extra environment variables.
func Shell(script string, env map[string]string) gexec.Cmd {
	return gexec.Cmd{Script: script, Env: env}
}
