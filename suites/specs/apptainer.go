package specs

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/framework"
)

// apptainerDef builds a SIF from the busybox tree unpacked in the guest: no
// registry, no library.
const apptainerDef = `Bootstrap: scratch

%files
    /tmp/gc-rootfs/bin /bin
    /tmp/gc-rootfs/etc /etc
    /tmp/gc-rootfs/var /var

%environment
    export GREETING=hello-from-sif

%runscript
    echo "run: $*"
`

// ApptainerSpec checks building and running SIF images, unprivileged.
func ApptainerSpec(run *framework.Run, guest func() *framework.Guest) {
	var img framework.TestImages

	It("apptainer: builds a SIF from a local definition", func(ctx SpecContext) {
		g := guest()
		img = g.UploadTestImages(ctx)
		g.RunRoot(ctx, "rm -rf /tmp/gc-rootfs && mkdir -p /tmp/gc-rootfs && tar -xf "+img.Rootfs+" -C /tmp/gc-rootfs")
		g.Upload(ctx, []byte(apptainerDef), "/tmp/gc-app/busybox.def", 0o644)
		g.RunRoot(ctx, "cd /tmp/gc-app && apptainer build --force busybox.sif busybox.def && chmod 0644 busybox.sif")
		Expect(g.Run(ctx, "test -s /tmp/gc-app/busybox.sif && echo ok")).To(Equal("ok"))
	}, NodeTimeout(2*run.Interval("engine")))

	It("apptainer: exec runs a command in the image", func(ctx SpecContext) {
		g := guest()
		Expect(g.Run(ctx, "apptainer exec /tmp/gc-app/busybox.sif sh -c 'echo $GREETING'")).To(Equal("hello-from-sif"))
	}, NodeTimeout(run.Interval("engine")))

	It("apptainer: run uses the runscript", func(ctx SpecContext) {
		g := guest()
		Expect(g.Run(ctx, "apptainer run /tmp/gc-app/busybox.sif a b")).To(Equal("run: a b"))
	}, NodeTimeout(run.Interval("engine")))

	It("apptainer: a bind mount is visible inside", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, "mkdir -p /tmp/gc-abind && echo from-host > /tmp/gc-abind/in")
		Expect(g.Run(ctx, "apptainer exec --bind /tmp/gc-abind:/data /tmp/gc-app/busybox.sif cat /data/in")).To(Equal("from-host"))
	}, NodeTimeout(run.Interval("engine")))

	It("apptainer: runs as the unprivileged user", func(ctx SpecContext) {
		g := guest()
		uid := g.Run(ctx, "id -u")
		Expect(uid).NotTo(Equal("0"))
		Expect(g.Run(ctx, "apptainer exec /tmp/gc-app/busybox.sif id -u")).To(Equal(uid))
	}, NodeTimeout(run.Interval("engine")))
}
