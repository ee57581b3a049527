package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// Boot gets the template's image, boots and provisions its guest and waits
// until it is ready; it registers the guest's shutdown with DeferCleanup.
// What cannot run here (offline, an unreachable installer or image) skips
// the template's specs with the reason; a guest that does not become ready
// fails them with the phase, the console tail and the artifacts path.
func Boot(ctx SpecContext, name string) *Guest {
	GinkgoHelper()
	bootStart := time.Now()
	cfg := current()
	t := MustResolve(name)
	rep := reportFor(t.Name)
	artifacts := filepath.Join(cfg.ArtifactsDir, t.Name)
	rep.Artifacts = artifacts
	logger := bootLogger(cfg)

	if reason := unmetRequirement(ctx, cfg, t); reason != "" {
		Skip(reason)
	}

	imageStart := time.Now()
	img, err := image.Resolve(ctx, t, cfg.Arch, imageOptions(cfg, logger)...)
	if err != nil {
		if reason, ok := image.Unavailable(err); ok {
			Skip(fmt.Sprintf("no image for %s/%s here: %s", t.Name, cfg.Arch, reason))
		}
		Fail(fmt.Sprintf("template %s, phase image: %v", t.Name, err))
	}
	rep.Image = report.Image{Source: img.Source, Digest: img.Digest}
	rep.Phases = []report.Phase{{Name: "image", Seconds: time.Since(imageStart).Seconds(), Result: report.Pass}}
	if img.Recipe != nil {
		rep.Image.Recipe = img.Recipe
	}

	ivals := intervalsSet()
	mcfg := machine.Config{
		Template:      t,
		Image:         machine.Image{Disk: img.Disk, Format: img.Format, Kernel: img.Kernel, Initrd: img.Initrd, Append: img.Append, Firmware: img.Firmware},
		Arch:          cfg.Arch,
		Accel:         cfg.Accel,
		ArtifactsDir:  artifacts,
		Intervals:     ivals,
		Logger:        logger,
		KeepOnFailure: cfg.KeepOnFailure,
	}
	m, err := startMachine(ctx, cfg, t, img, mcfg, rep)
	if m != nil {
		recordMachine(rep, m)
		DeferCleanup(func(ctx SpecContext) {
			if cfg.KeepOnFailure && CurrentSpecReport().Failed() {
				fmt.Fprintf(GinkgoWriter, "keeping %s running: %s\n", t.Name, m.SSHCommand())
				return
			}
			Expect(m.Close(ctx)).To(Succeed(), "shutting down %s", t.Name)
		}, NodeTimeout(2*Interval("default/shutdown")))
	}
	if err != nil {
		var pe *machine.PhaseError
		if errors.As(err, &pe) {
			Fail(pe.Error())
		}
		Fail(fmt.Sprintf("template %s: %v (artifacts: %s)", t.Name, err, artifacts))
	}
	stateMu.Lock()
	usedAccel = m.Accelerator().Used
	stateMu.Unlock()

	recordBoot(t.Name, rep, time.Since(bootStart))
	g := &Guest{Template: t, Arch: cfg.Arch, Hostname: cloudinit.DefaultHostname(t.Name), Report: rep, runner: m.Runner(), artifacts: artifacts}
	if t.Engine != nil && t.Engine.VersionCommand != "" {
		res, err := g.ExecRoot(ctx, t.Engine.VersionCommand)
		if err == nil {
			g.EngineVersion = strings.TrimSpace(string(res.Stdout))
			rep.EngineVersion = g.EngineVersion
		}
	}
	return g
}

func recordMachine(rep *report.Template, m *machine.Machine) {
	a := m.Accelerator()
	rep.Accelerator = a.Used
	rep.AccelReason = a.Reason
	rep.QEMUVersion = m.QEMUVersion()
	rep.Phases = rep.Phases[:min(1, len(rep.Phases))] // keep the image phase
	for _, p := range m.Phases() {
		rep.Phases = append(rep.Phases, report.Phase{Name: p.Name, Seconds: p.Duration.Seconds(), Result: phaseResult(p.Result)})
	}
}

func phaseResult(s string) report.Result {
	if s == "ok" {
		return report.Pass
	}
	return report.Fail
}

// bootLogger logs boot progress to the spec's GinkgoWriter (shown with a
// failure, or live with -ginkgo.v), or to the CLI's progress stream with -v.
func bootLogger(cfg *Config) *slog.Logger {
	var w io.Writer = GinkgoWriter
	if cfg.Verbose && cfg.Progress != nil {
		w = cfg.Progress
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func imageOptions(cfg *Config, logger *slog.Logger) []image.Option {
	opts := []image.Option{image.WithLogger(logger)}
	if cfg.Offline {
		opts = append(opts, image.WithOffline())
	}
	if cfg.CacheDir != "" {
		opts = append(opts, image.WithCacheDir(cfg.CacheDir))
	}
	if len(cfg.Mirrors) > 0 {
		opts = append(opts, image.WithMirrors(cfg.Mirrors))
	}
	if cfg.Progress != nil {
		opts = append(opts, image.WithProgress(cfg.Progress))
	}
	return opts
}

// unmetRequirement checks what the template's provisioning needs from
// outside (a vendor installer's URL) before anything boots, and returns the
// reason to skip, or "".
func unmetRequirement(ctx context.Context, cfg *Config, t *catalog.Template) string {
	if t.Engine == nil {
		return ""
	}
	// --offline is about images (no download); the guest's network is
	// what it is, so a requirement is judged by reaching it, offline or not.
	for _, r := range t.Engine.Requires {
		url := r.URL
		if url == "" {
			url = "https://deb.debian.org/"
		}
		if err := reachable(ctx, url); err != nil {
			return fmt.Sprintf("%s (%s: %v)", r.Reason, url, err)
		}
	}
	return ""
}

// reachable is a bounded HEAD request: the guest's user-mode network goes
// out through this host, so what the host cannot reach the guest cannot.
func reachable(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return nil
}

// startMachine boots the guest, from a provisioned disk when one matches.
func startMachine(ctx context.Context, cfg *Config, t *catalog.Template, img *image.Artifact, mcfg machine.Config, rep *report.Template) (*machine.Machine, error) {
	rep.Provisioned = "fresh"
	return machine.Start(ctx, mcfg)
}
