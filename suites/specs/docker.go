package specs

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/framework"
)

// DockerSpec checks that Docker loads, runs, builds, publishes and persists.
// The specs run as the template's user, who is in the docker group.
func DockerSpec(run *framework.Run, guest func() *framework.Guest) {
	var img framework.TestImages
	const ref = framework.TestImageRef

	It("docker: imports a local image", func(ctx SpecContext) {
		g := guest()
		img = g.UploadTestImages(ctx)
		g.Run(ctx, "docker import "+img.Rootfs+" "+ref)
		Expect(g.Run(ctx, "docker image ls --format '{{.Repository}}:{{.Tag}}'")).To(ContainSubstring(ref))
	}, NodeTimeout(run.Interval("engine")))

	It("docker: runs a container; stdout and exit code come back", func(ctx SpecContext) {
		g := guest()
		out := g.RunExit(ctx, false, "docker run --rm "+ref+" sh -c 'echo hello from docker; exit 3'", 3)
		Expect(out).To(Equal("hello from docker\n"))
	}, NodeTimeout(run.Interval("engine")))

	It("docker: builds an image from a Dockerfile on the local image", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, `rm -rf /tmp/gc-build && mkdir -p /tmp/gc-build && cd /tmp/gc-build &&
printf 'FROM `+ref+`\nRUN echo built-in-guest > /built\nCMD ["cat", "/built"]\n' > Dockerfile`)
		// The classic builder uses local images only; BuildKit (docker-buildx)
		// is not part of Debian's docker.io and would try a registry.
		g.RunCmd(ctx, framework.Shell("cd /tmp/gc-build && docker build -q -t localhost/gc-built:1 .", map[string]string{"DOCKER_BUILDKIT": "0"}))
		Expect(g.Run(ctx, "docker run --rm localhost/gc-built:1")).To(Equal("built-in-guest"))
	}, NodeTimeout(2*run.Interval("engine")))

	It("docker: a published port answers", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, "docker rm -f gc-web >/dev/null 2>&1; docker run -d --name gc-web -p 127.0.0.1:18081:80 "+ref+" httpd -f -p 80 -h /var/www")
		DeferCleanup(func(ctx SpecContext) { _, _ = g.Exec(ctx, "docker rm -f gc-web") })
		Eventually(ctx, func() (string, error) {
			res, err := g.Exec(ctx, "docker run --rm --network host "+ref+" wget -qO- http://127.0.0.1:18081/")
			return string(res.Stdout), err
		}).WithTimeout(g.Interval("engine")).WithPolling(g.Interval("default/poll")).
			Should(Equal("hello from busybox\n"))
	}, NodeTimeout(2*run.Interval("engine")))

	It("docker: a named volume survives container removal", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, "docker volume rm -f gc-vol >/dev/null; docker volume create gc-vol")
		g.Run(ctx, "docker run --rm -v gc-vol:/data "+ref+" sh -c 'echo kept > /data/f'")
		Expect(g.Run(ctx, "docker run --rm -v gc-vol:/data "+ref+" cat /data/f")).To(Equal("kept"))
	}, NodeTimeout(run.Interval("engine")))

	It("docker: restart policy survives a daemon restart", func(ctx SpecContext) {
		g := guest()
		g.Run(ctx, "docker rm -f gc-always >/dev/null 2>&1; docker run -d --restart always --name gc-always "+ref+" sleep 100000")
		DeferCleanup(func(ctx SpecContext) { _, _ = g.Exec(ctx, "docker rm -f gc-always") })
		before := g.Run(ctx, "docker inspect -f '{{.State.StartedAt}}' gc-always")
		g.RunRoot(ctx, "systemctl restart docker")
		Eventually(ctx, func() (string, error) {
			res, err := g.Exec(ctx, "docker inspect -f '{{.State.Running}} {{.State.StartedAt}}' gc-always")
			return string(res.Stdout), err
		}).WithTimeout(g.Interval("engine")).WithPolling(g.Interval("default/poll")).
			Should(SatisfyAll(HavePrefix("true "), Not(ContainSubstring(before))))
	}, NodeTimeout(2*run.Interval("engine")))
}
