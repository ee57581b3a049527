package specs

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/framework"
)

// PodmanSpec checks rootful and rootless Podman: run, build, pods, ports.
func PodmanSpec(run *framework.Run, guest func() *framework.Guest) {
	var img framework.TestImages
	const ref = framework.TestImageRef

	It("podman: rootful import and run; stdout and exit code come back", func(ctx SpecContext) {
		g := guest()
		img = g.UploadTestImages(ctx)
		g.RunRoot(ctx, "podman import -q "+img.Rootfs+" "+ref)
		out := g.RunExit(ctx, true, "podman run --rm "+ref+" sh -c 'echo hello from podman; exit 3'", 3)
		Expect(out).To(Equal("hello from podman\n"))
	}, NodeTimeout(run.Interval("engine")))

	It("podman: rootless run as the template's user", func(ctx SpecContext) {
		g := guest()
		Expect(g.Run(ctx, "podman info --format '{{.Host.Security.Rootless}}'")).To(Equal("true"))
		g.Run(ctx, "podman import -q "+img.Rootfs+" "+ref)
		// Root in the container is the user outside: the user namespace works.
		Expect(g.Run(ctx, "podman run --rm "+ref+" id -u")).To(Equal("0"))
		Expect(g.Run(ctx, "podman unshare cat /proc/self/uid_map | awk 'NR==2 {print $3}'")).NotTo(BeEmpty(),
			"no subordinate uid range for the user (/etc/subuid)")
	}, NodeTimeout(run.Interval("engine")))

	It("podman: rootless build from a Containerfile", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, `rm -rf /tmp/gc-pbuild && mkdir -p /tmp/gc-pbuild && cd /tmp/gc-pbuild &&
printf 'FROM `+ref+`\nRUN echo built-rootless > /built\nCMD ["cat", "/built"]\n' > Containerfile`)
		g.Run(ctx, "cd /tmp/gc-pbuild && podman build -q -t localhost/gc-pbuilt:1 .")
		Expect(g.Run(ctx, "podman run --rm localhost/gc-pbuilt:1")).To(Equal("built-rootless"))
	}, NodeTimeout(2*run.Interval("engine")))

	It("podman: a pod's two containers share localhost", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, "podman pod rm -f gc-pod >/dev/null 2>&1; podman pod create --name gc-pod")
		DeferCleanup(func(ctx SpecContext) { _, _ = g.Exec(ctx, "podman pod rm -f gc-pod") })
		g.Run(ctx, "podman run -d --pod gc-pod "+ref+" httpd -f -p 127.0.0.1:18083 -h /var/www")
		Eventually(ctx, func() (string, error) {
			res, err := g.Exec(ctx, "podman run --rm --pod gc-pod "+ref+" wget -qO- http://127.0.0.1:18083/")
			return string(res.Stdout), err
		}).WithTimeout(g.Interval("engine")).WithPolling(g.Interval("default/poll")).
			Should(Equal("hello from busybox\n"))
	}, NodeTimeout(2*run.Interval("engine")))

	It("podman: a published port answers", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, "podman rm -f gc-web >/dev/null 2>&1; podman run -d --name gc-web -p 127.0.0.1:18084:80 "+ref+" httpd -f -p 80 -h /var/www")
		DeferCleanup(func(ctx SpecContext) { _, _ = g.Exec(ctx, "podman rm -f gc-web") })
		Eventually(ctx, func() (string, error) {
			res, err := g.Exec(ctx, "podman run --rm --network host "+ref+" wget -qO- http://127.0.0.1:18084/")
			return string(res.Stdout), err
		}).WithTimeout(g.Interval("engine")).WithPolling(g.Interval("default/poll")).
			Should(Equal("hello from busybox\n"))
	}, NodeTimeout(2*run.Interval("engine")))
}
