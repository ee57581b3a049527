package main

import (
	"context"
	"fmt"
	"github.com/guestcatalog/guestcatalog/catalog"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/hostcheck"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Doctor check outcomes.
const (
	doctorOK   = "ok"
	doctorWarn = "warn"
	doctorFail = "fail"
)

// doctorCheck is one line of `catalog doctor`.
type doctorCheck struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do about a warn or fail.
	Fix string `json:"fix,omitempty"`
}

type doctorReport struct {
	OK          bool              `json:"ok"`
	Arch        string            `json:"arch"`
	CacheDir    string            `json:"cacheDir"`
	RunRoot     string            `json:"runRoot"`
	Checks      []doctorCheck     `json:"checks"`
	Accelerator *qemu.AccelReport `json:"accelerator,omitempty"`
	Versions    map[string]string `json:"versions"`
}

type doctorOptions struct {
	output  outputOptions
	kernel  string
	noProbe bool
}

func newDoctorCmd(a *app) *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this machine can build, boot and verify guests",
		Long: `doctor checks what verifying templates needs and says how to fix what is
missing: QEMU and qemu-img (versions), the accelerator, judged by a real probe
boot (KVM is tried where /dev/kvm can create a VM, then TCG; each with its
timing), firmware (SeaBIOS, OVMF, AAVMF), the tools for local image builds
(mmdebstrap, mkfs.ext4) and for user-data schema checks (cloud-init), free disk
at the cache dir and free memory.

For the other architecture (aarch64 guests on an x86_64 host) it checks the
emulator, the UEFI firmware (AAVMF), the binfmt_misc registration of
qemu-user and arch-test (local arm64 image builds), and says that such guests
are foreign and what that costs: the measured slowdown their intervals are
scaled by. What is missing there warns; it never fails the verdict.

The accelerator probe boots a Linux kernel with no root file system and waits
for its panic: that tells a working KVM from a nested one whose guests hang.
The kernel is --kernel, else $GUESTCATALOG_TEST_KERNEL, a test kernel or a
locally built image's kernel in the cache, else the host's /boot/vmlinuz.
Without any, doctor boots SeaBIOS alone, which proves less (the verdict says
so).

The exit code is 1 when something essential is missing (QEMU, qemu-img, an
accelerator that boots a guest, SeaBIOS; with --offline also mmdebstrap and
mkfs.ext4, since offline every image is built locally).`,
		Example: `  catalog doctor
  catalog doctor --no-probe -o json | jq .accelerator`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := o.output.get()
			if err != nil {
				return err
			}
			rep := a.runDoctor(cmd.Context(), o, cmd.ErrOrStderr())
			if err := printDoctor(cmd.OutOrStdout(), rep, format); err != nil {
				return err
			}
			if !rep.OK {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kernel, "kernel", "", "Linux kernel for the accelerator probe boot (default: found in the cache or /boot)")
	f.BoolVar(&o.noProbe, "no-probe", false, "skip the probe boots (the accelerator verdict then rests on /dev/kvm alone)")
	addOutputFlag(cmd, &o.output, true)
	return cmd
}

func (a *app) doctorCacheDir() string {
	if d, err := filepath.Abs(a.cacheDir); err == nil {
		return d
	}
	return a.cacheDir
}

func (a *app) runDoctor(ctx context.Context, o doctorOptions, stderr io.Writer) doctorReport {
	arch := catalog.HostArch()
	rep := doctorReport{Arch: arch, CacheDir: a.doctorCacheDir(), RunRoot: a.envCfg.RunRoot, Versions: map[string]string{}}
	add := func(c doctorCheck) { rep.Checks = append(rep.Checks, c) }
	qemuPkg := "qemu-system-x86"
	if arch == qemu.ArchAarch64 {
		qemuPkg = "qemu-system-arm"
	}

	// QEMU and qemu-img.
	bin := qemu.Binary(arch)
	qemuOK := false
	if path, err := exec.LookPath(bin); err != nil {
		add(doctorCheck{Name: "qemu", Status: doctorFail, Detail: bin + " not found",
			Fix: "apt-get install " + qemuPkg})
	} else {
		v := toolVersion(ctx, path, "--version")
		rep.Versions["qemu"] = v
		qemuOK = true
		add(doctorCheck{Name: "qemu", Status: doctorOK, Detail: fmt.Sprintf("%s %s", path, v)})
	}
	if path, err := exec.LookPath(qemu.QemuImg); err != nil {
		add(doctorCheck{Name: "qemu-img", Status: doctorFail, Detail: "qemu-img not found (overlays, image conversion)",
			Fix: "apt-get install qemu-utils"})
	} else {
		v := toolVersion(ctx, path, "--version")
		rep.Versions["qemu-img"] = v
		add(doctorCheck{Name: "qemu-img", Status: doctorOK, Detail: fmt.Sprintf("%s %s", path, v)})
	}

	// Firmware.
	if arch == qemu.ArchX8664 {
		add(fileCheck("seabios", doctorFail, "BIOS for x86 disk images", "apt-get install seabios", qemu.SeaBIOSBin))
		add(fileCheck("ovmf", doctorWarn, "UEFI for templates with firmware: uefi", "apt-get install ovmf", qemu.OVMFCode, qemu.OVMFVars))
	}
	if arch == qemu.ArchAarch64 {
		add(fileCheck("aavmf", doctorWarn, "UEFI for aarch64 guests", "apt-get install qemu-efi-aarch64", qemu.AAVMFCode, qemu.AAVMFVars))
	}
	// Foreign-arch guests (aarch64 on an x86_64 host): emulator, firmware,
	// qemu-user for local builds, and what emulation costs.
	for _, c := range foreignArchChecks(hostcheck.Host{}, arch, a.loadIntervalsOrNil()) {
		add(c)
	}

	// Accelerator: a real probe boot.
	add(a.acceleratorCheck(ctx, o, arch, qemuOK, &rep, stderr))

	// Tools for local builds and schema checks.
	buildSeverity, why := doctorWarn, "needed to build images locally (templates with build:, and every template offline)"
	if a.offline {
		buildSeverity, why = doctorFail, "needed offline: every image is built locally"
	}
	add(toolCheck(ctx, "mmdebstrap", buildSeverity, why, "apt-get install mmdebstrap", &rep))
	add(toolCheck(ctx, "mkfs.ext4", buildSeverity, why, "apt-get install e2fsprogs", &rep))
	add(toolCheck(ctx, "cloud-init", doctorWarn, "validates rendered user-data against cloud-init's schema (skipped without it)", "apt-get install cloud-init", &rep))

	// Room to work.
	add(diskCheck(rep.CacheDir))
	add(memoryCheck())
	add(runRootCheck(rep.RunRoot))
	add(a.intervalsCheck())

	rep.OK = true
	for _, c := range rep.Checks {
		if c.Status == doctorFail {
			rep.OK = false
		}
	}
	return rep
}

func (a *app) acceleratorCheck(ctx context.Context, o doctorOptions, arch string, qemuOK bool, rep *doctorReport, stderr io.Writer) doctorCheck {
	c := doctorCheck{Name: "accelerator"}
	kvmErr := qemu.KVMUsable(arch)
	if !qemuOK {
		c.Status, c.Detail, c.Fix = doctorFail, "cannot probe without QEMU", "install QEMU (see above)"
		return c
	}
	if o.noProbe {
		c.Status = doctorWarn
		if kvmErr != nil {
			c.Detail = "not probed; kvm unusable (" + kvmErr.Error() + "): guests run under tcg"
		} else {
			c.Detail = "not probed; /dev/kvm creates VMs, but only a boot tells whether guests run under it (auto watches and falls back to tcg)"
		}
		c.Fix = "run without --no-probe"
		return c
	}
	kernel := o.kernel
	if kernel == "" {
		kernel, _ = a.env.Lookup(config.EnvProbeKernel)
	}
	if kernel == "" {
		kernel = qemu.FindProbeKernel(rep.CacheDir)
	}
	in := qemu.ProbeInput{Arch: arch, Kernel: kernel}
	if a.verbose {
		in.Options = append(in.Options, qemu.WithLogger(slog.New(slog.NewTextHandler(stderr, nil))))
	}
	if kernel == "" && arch != qemu.ArchX8664 {
		c.Status, c.Detail = doctorWarn, "no kernel found to probe with"
		c.Fix = "pass --kernel PATH (a Linux kernel for " + arch + ")"
		return c
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ar, err := qemu.ProbeAccel(pctx, in)
	if err != nil {
		c.Status, c.Detail = doctorFail, "probe failed: "+err.Error()
		return c
	}
	rep.Accelerator = &ar
	var lines []string
	for _, p := range ar.Probes {
		verdict := "failed"
		if p.OK {
			verdict = "ok"
		}
		lines = append(lines, fmt.Sprintf("%s %s probe %s in %.1fs: %s", p.Accel, p.Method, verdict, p.Elapsed.Seconds(), p.Detail))
	}
	if ar.KVMUnusable != "" {
		lines = append([]string{"kvm not probed: " + ar.KVMUnusable}, lines...)
	}
	switch {
	case ar.Verdict == "":
		c.Status = doctorFail
		c.Fix = "check " + qemu.Binary(arch) + " runs at all (see qemu.log with --verbose)"
	case kernel == "":
		c.Status = doctorWarn
		c.Fix = "for a conclusive probe pass --kernel PATH, or build an image first (a local-build template's `catalog verify`)"
	default:
		c.Status = doctorOK
	}
	c.Detail = ar.Verdict + ": " + ar.Reason
	if kernel != "" {
		c.Detail += " (probe kernel " + kernel + ")"
	}
	c.Detail += "\n" + strings.Join(lines, "\n")
	return c
}

// toolVersion returns the first line of `tool args...`, shortened to the
// version where it has the usual form.
func toolVersion(ctx context.Context, path string, args ...string) string {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, path, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "(version unknown: " + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	for _, prefix := range []string{"QEMU emulator version ", "qemu-img version ", "mmdebstrap ", "/usr/bin/cloud-init "} {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimPrefix(line, prefix)
		}
	}
	return line
}

func toolCheck(ctx context.Context, tool, severity, why, fix string, rep *doctorReport) doctorCheck {
	path, err := exec.LookPath(tool)
	if err != nil {
		return doctorCheck{Name: tool, Status: severity, Detail: "not found: " + why, Fix: fix}
	}
	detail := path
	switch tool {
	case "mmdebstrap", "cloud-init":
		v := toolVersion(ctx, path, "--version")
		rep.Versions[tool] = v
		detail += " " + v
	}
	return doctorCheck{Name: tool, Status: doctorOK, Detail: detail}
}

func fileCheck(name, severity, what, fix string, paths ...string) doctorCheck {
	var missing []string
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return doctorCheck{Name: name, Status: severity, Detail: what + ": missing " + strings.Join(missing, ", "), Fix: fix}
	}
	return doctorCheck{Name: name, Status: doctorOK, Detail: strings.Join(paths, ", ")}
}

func diskCheck(cacheDir string) doctorCheck {
	c := doctorCheck{Name: "disk"}
	if cacheDir == "" {
		c.Status, c.Detail, c.Fix = doctorFail, "no cache dir", "set --cache-dir or GUESTCATALOG_CACHE"
		return c
	}
	// The cache dir may not exist yet: measure its nearest existing parent.
	dir := cacheDir
	for {
		if _, err := os.Stat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		c.Status, c.Detail = doctorWarn, fmt.Sprintf("cache dir %s: %v", cacheDir, err)
		return c
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	c.Detail = fmt.Sprintf("%s free at cache dir %s", humanBytes(free), cacheDir)
	switch {
	case free < 2<<30:
		c.Status, c.Fix = doctorFail, "free disk space or point --cache-dir elsewhere (images, overlays and builds need several GiB)"
	case free < 10<<30:
		c.Status, c.Fix = doctorWarn, "a few templates fit; the nightly matrix needs 10 GiB or more"
	default:
		c.Status = doctorOK
	}
	return c
}

func memoryCheck() doctorCheck {
	c := doctorCheck{Name: "memory"}
	avail, err := memAvailable()
	if err != nil {
		c.Status, c.Detail = doctorWarn, "reading /proc/meminfo: "+err.Error()
		return c
	}
	c.Detail = humanBytes(avail) + " available"
	switch {
	case avail < 512<<20:
		c.Status, c.Fix = doctorFail, "a guest needs at least 512 MiB; free memory"
	case avail < 2<<30:
		c.Status, c.Fix = doctorWarn, "templates ask 1-4 GiB each; run fewer guests at once"
	default:
		c.Status = doctorOK
	}
	return c
}

func memAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no MemAvailable in /proc/meminfo")
}

func runRootCheck(root string) doctorCheck {
	c := doctorCheck{Name: "run dir"}
	rd, err := qemu.NewRunDir(root, "doctor")
	if err != nil {
		c.Status, c.Detail = doctorFail, err.Error()
		c.Fix = "set " + qemu.EnvRunRoot + " to a short, writable directory"
		return c
	}
	sock := rd.File(qemu.QMPSocketName)
	rd.Remove()
	c.Detail = fmt.Sprintf("%s (QMP socket paths %d of %d bytes)", root, len(sock), qemu.UnixPathMax-1)
	c.Status = doctorOK
	if len(sock) >= qemu.UnixPathMax {
		c.Status, c.Fix = doctorFail, "set "+qemu.EnvRunRoot+" to a shorter directory"
	}
	return c
}

func (a *app) intervalsCheck() doctorCheck {
	c := doctorCheck{Name: "intervals"}
	s, err := a.envCfg.Intervals()
	if err != nil {
		c.Status, c.Detail = doctorFail, err.Error()
		c.Fix = "fix " + intervals.EnvFile + " or the " + intervals.EnvPrefix + "* variables"
		return c
	}
	ssh := s.MustGet("default/wait-ssh", intervals.AccelTCG)
	c.Status = doctorOK
	c.Detail = fmt.Sprintf("tcg scale ×%g (default/wait-ssh %s under tcg)", s.Scale(intervals.AccelTCG), ssh)
	if f := a.envCfg.IntervalsFile; f != "" {
		c.Detail += "; overrides from " + f
	}
	return c
}

// loadIntervalsOrNil is the run's interval set, nil when it does not load
// (intervalsCheck reports that).
func (a *app) loadIntervalsOrNil() *intervals.Set {
	s, err := a.envCfg.Intervals()
	if err != nil {
		return nil
	}
	return s
}

// foreignArchChecks are doctor's lines for the guest arches other than the
// host's: the emulator, the UEFI firmware, the binfmt registration of
// qemu-user (local image builds), and one line saying that such guests are
// foreign and what it costs (the measured factor their intervals carry).
// A foreign arch is optional: what is missing warns, never fails.
func foreignArchChecks(h hostcheck.Host, hostArch string, ivals *intervals.Set) []doctorCheck {
	var out []doctorCheck
	for _, arch := range []string{qemu.ArchX8664, qemu.ArchAarch64} {
		if arch == hostArch {
			continue
		}
		for _, c := range h.Foreign(arch, hostArch) {
			st := doctorOK
			if c.Status != hostcheck.OK {
				st = doctorWarn
			}
			out = append(out, doctorCheck{Name: c.Name, Status: st, Detail: c.Detail, Fix: c.Fix})
		}
		cost := fmt.Sprintf("%s guests on this %s host are a foreign architecture: no KVM, every instruction is translated by TCG "+
			"(and a local image build runs the guest's package scripts through qemu-user)", arch, hostArch)
		if ivals != nil {
			if f := ivals.ForeignScale(arch, hostArch); f > 1 {
				cost += fmt.Sprintf("; measured %.1f× slower than a native guest under TCG, so their intervals are scaled ×%.1f "+
					"(default/wait-ssh %s instead of %s)", f, f,
					ivals.ForGuest(arch, hostArch).MustGet("default/wait-ssh", intervals.AccelTCG),
					ivals.MustGet("default/wait-ssh", intervals.AccelTCG))
			}
		}
		out = append(out, doctorCheck{Name: "foreign " + arch, Status: doctorOK, Detail: cost})
	}
	return out
}

func humanBytes(n int64) string {
	const gib = 1 << 30
	if n >= gib {
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func printDoctor(w io.Writer, rep doctorReport, format string) error {
	if format != outputTable {
		return writeData(w, format, rep)
	}
	width := 11
	for _, c := range rep.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range rep.Checks {
		lines := strings.Split(c.Detail, "\n")
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", strings.ToUpper(c.Status), width, c.Name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%-4s  %-*s    %s\n", "", width, "", l)
		}
		if c.Fix != "" && c.Status != doctorOK {
			fmt.Fprintf(w, "%-4s  %-*s  → %s\n", "", width, "", c.Fix)
		}
	}
	if rep.OK {
		fmt.Fprintln(w, "\nthis machine can verify templates")
	} else {
		fmt.Fprintln(w, "\nsomething essential is missing (FAIL above)")
	}
	return nil
}
