package specs

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/framework"
)

// BaseSpec runs on every template: access, cloud-init, identity, disk,
// services and clock as the template declares them.
func BaseSpec(run *framework.Run, guest func() *framework.Guest) {
	It("base: SSH works as the template's user", func(ctx SpecContext) {
		g := guest()
		Expect(g.Run(ctx, "id -un")).To(Equal(g.User()))
	}, NodeTimeout(run.Interval("default/probe")))

	It("base: cloud-init finished without errors", func(ctx SpecContext) {
		g := guest()
		// result.json is written once cloud-init's final stage is done; it
		// lists every error. Never `cloud-init status --wait` (it can spin).
		raw := g.RunRoot(ctx, "cat /run/cloud-init/result.json")
		var result struct {
			V1 struct {
				Datasource string   `json:"datasource"`
				Errors     []string `json:"errors"`
			} `json:"v1"`
		}
		Expect(json.Unmarshal([]byte(raw), &result)).To(Succeed(), "result.json: %s", raw)
		Expect(result.V1.Errors).To(BeEmpty(), "cloud-init errors (see %s)", g.Artifacts())
		Expect(result.V1.Datasource).To(ContainSubstring("NoCloud"))
		Expect(g.RunRoot(ctx, "cat /var/lib/guestcatalog/provisioned")).To(Equal("ok"),
			"provisioning did not finish; see provision.log in %s", g.Artifacts())
	}, NodeTimeout(run.Interval("default/probe")))

	It("base: hostname is the one declared", func(ctx SpecContext) {
		g := guest()
		Expect(g.Run(ctx, "hostname")).To(Equal(g.Hostname))
	}, NodeTimeout(run.Interval("default/probe")))

	It("base: sudo is as declared", func(ctx SpecContext) {
		g := guest()
		_, err := g.Exec(ctx, "sudo -n true")
		if g.Template.User.Sudo != nil && *g.Template.User.Sudo {
			Expect(err).NotTo(HaveOccurred(), "the user should have passwordless sudo")
			Expect(g.Run(ctx, "sudo -n id -u")).To(Equal("0"))
		} else {
			Expect(err).To(HaveOccurred(), "the user should not have sudo")
		}
	}, NodeTimeout(run.Interval("default/probe")))

	It("base: root filesystem is grown to the template's disk size", func(ctx SpecContext) {
		g := guest()
		out := g.Run(ctx, "df -P -B1 / | awk 'NR==2 {print $2}'")
		size, err := strconv.ParseInt(out, 10, 64)
		Expect(err).NotTo(HaveOccurred(), "df printed %q", out)
		want := g.Template.DiskBytes()
		// ext4/xfs metadata and reserved blocks take a few percent.
		Expect(size).To(BeNumerically(">=", want*85/100),
			"root filesystem is %d MiB, template asks for %d MiB: growpart/resizefs did not run", size>>20, want>>20)
	}, NodeTimeout(run.Interval("default/probe")))

	It("base: no failed systemd units", func(ctx SpecContext) {
		g := guest()
		if g.Template.Distro.Init != "" && g.Template.Distro.Init != "systemd" {
			Skip("init is " + g.Template.Distro.Init + ", not systemd")
		}
		failed := g.RunRoot(ctx, "systemctl list-units --state=failed --no-legend --plain | awk '{print $1}'")
		Expect(failed).To(BeEmpty(), "failed units; `journalctl -u <unit>` in the guest, or journal.txt in %s", g.Artifacts())
	}, NodeTimeout(run.Interval("default/probe")))

	It("base: guest clock is sane", func(ctx SpecContext) {
		g := guest()
		out := g.Run(ctx, "date -u +%s")
		secs, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		Expect(err).NotTo(HaveOccurred())
		skew := time.Since(time.Unix(secs, 0))
		Expect(skew.Abs()).To(BeNumerically("<", 2*time.Minute), "guest clock is off by %s", skew)
	}, NodeTimeout(run.Interval("default/probe")))
}

// recordEngineVersion attaches the engine version the guest reports to
// every spec of the template.
func recordEngineVersion(g *framework.Guest) {
	if g != nil && g.EngineVersion != "" {
		AddReportEntry("engine-version", g.EngineVersion)
	}
}
