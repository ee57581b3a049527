package specs

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/framework"
)

// ctr runs containerd's CLI in a namespace of our own.
const ctr = "ctr -n guestcatalog "

// ContainerdSpec checks that containerd imports and runs containers.
func ContainerdSpec(run *framework.Run, guest func() *framework.Guest) {
	var img framework.TestImages

	It("containerd: imports a local image", func(ctx SpecContext) {
		g := guest()
		img = g.UploadTestImages(ctx)
		g.RunRoot(ctx, ctr+"images import --no-unpack=false "+img.OCI)
		Expect(g.RunRoot(ctx, ctr+"images ls -q")).To(ContainSubstring(framework.TestImageRef))
	}, NodeTimeout(run.Interval("engine")))

	It("containerd: runs a container; stdout and exit code come back", func(ctx SpecContext) {
		g := guest()
		out := g.RunExit(ctx, true, ctr+"run --rm "+framework.TestImageRef+" gc-exit sh -c 'echo hello from ctr; exit 3'", 3)
		Expect(out).To(Equal("hello from ctr\n"))
	}, NodeTimeout(run.Interval("engine")))

	It("containerd: passes env and a bind mount", func(ctx SpecContext) {
		g := guest()
		g.RunRoot(ctx, "mkdir -p /tmp/gc-bind && echo from-host > /tmp/gc-bind/in && rm -f /tmp/gc-bind/out")
		out := g.RunRoot(ctx, ctr+"run --rm --env GREETING=hej --mount type=bind,src=/tmp/gc-bind,dst=/data,options=rbind:rw "+
			framework.TestImageRef+" gc-env sh -c 'echo $GREETING; cat /data/in; echo from-container > /data/out'")
		Expect(out).To(Equal("hej\nfrom-host"))
		Expect(g.RunRoot(ctx, "cat /tmp/gc-bind/out")).To(Equal("from-container"))
	}, NodeTimeout(run.Interval("engine")))

	It("containerd: a container reaches another over the network", func(ctx SpecContext) {
		g := guest()
		// Host networking: the Debian package ships no CNI configuration.
		g.RunRoot(ctx, ctr+"run -d --net-host "+framework.TestImageRef+" gc-web httpd -f -p 127.0.0.1:18080 -h /var/www")
		DeferCleanup(func(ctx SpecContext) {
			_, _ = g.ExecRoot(ctx, ctr+"task kill -s KILL gc-web; sleep 1; "+ctr+"task rm -f gc-web; "+ctr+"containers rm gc-web")
		})
		Eventually(ctx, func() (string, error) {
			res, err := g.ExecRoot(ctx, ctr+"run --rm --net-host "+framework.TestImageRef+" gc-client wget -qO- http://127.0.0.1:18080/")
			return string(res.Stdout), err
		}).WithTimeout(g.Interval("engine")).WithPolling(g.Interval("default/poll")).
			Should(Equal("hello from busybox\n"))
	}, NodeTimeout(2*run.Interval("engine")))

	It("containerd: a restart keeps the images", func(ctx SpecContext) {
		g := guest()
		g.RunRoot(ctx, "systemctl restart containerd")
		Eventually(ctx, func() (string, error) {
			res, err := g.ExecRoot(ctx, ctr+"images ls -q")
			return string(res.Stdout), err
		}).WithTimeout(g.Interval("engine")).WithPolling(g.Interval("default/poll")).
			Should(ContainSubstring(framework.TestImageRef))
	}, NodeTimeout(2*run.Interval("engine")))
}
