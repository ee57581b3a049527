package isolation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// The disk fill writes real data (zeros through O_DIRECT in 4 MiB blocks,
// then the remainder in 64 KiB buffered blocks) until ENOSPC. It does not
// use fallocate: ext4 marks fallocated extents unwritten and writes no
// data, so the qcow2 overlay would not grow and the host-side bound would
// be asserted without being exercised. QEMU writes zeros as data (the
// drive has no detect-zeroes), and the check also measures that the
// overlay grew with the writes, so a zero-detecting or deduplicating disk
// is reported as not measured rather than held. Measured under TCG on a
// loaded 2-core host: about 170 MB/s, so a 10 GiB disk fills in about a
// minute; under KVM in seconds.
const (
	// diskFillMinPercent: the filled filesystem must reach this share of
	// the declared size (partition table, filesystem metadata and the
	// journal take the rest); the device itself must not exceed it.
	diskFillMinPercent = 80
	// diskSlackBytes + declared/100: qcow2 metadata (L2 and refcount
	// tables, about 0.2% at 64 KiB clusters) and the last partial clusters.
	diskSlackBytes = 64 << 20
	// diskHostMarginBytes is what the host must keep free beyond what the
	// fill can write: the check never fills the host's own disk.
	diskHostMarginBytes = 2 << 30
)

// diskMeasureScript prints the root filesystem's device size (its whole
// disk, the one QEMU gives the guest) and df's size, used and avail.
const diskMeasureScript = `src=$(findmnt -nvo SOURCE /)
disk=$(lsblk -ndo PKNAME "$src" 2>/dev/null)
[ -n "$disk" ] || disk=$(basename "$src")
echo "device $disk $(( $(cat /sys/class/block/$disk/size) * 512 ))"
echo "df $(df -B1 --output=size,used,avail / | tail -1)"`

// diskFillScript fills the root filesystem (root may use the reserved
// blocks) until ENOSPC within $1 seconds, and reports.
func diskFillScript(file string, seconds int) string {
	f := exec.Quote(file)
	return fmt.Sprintf(`rm -f %[1]s
timeout %[2]d dd if=/dev/zero of=%[1]s bs=4M oflag=direct status=none 2>/tmp/.gc-fill.err; rc=$?; echo "dd1 $rc"
[ "$rc" = 124 ] || { timeout %[2]d dd if=/dev/zero of=%[1]s bs=64k oflag=append conv=notrunc,fsync status=none 2>>/tmp/.gc-fill.err; echo "dd2 $?"; }
sync
grep -q 'No space left on device' /tmp/.gc-fill.err && echo enospc
rm -f /tmp/.gc-fill.err
echo "written $(stat -c %%s %[1]s 2>/dev/null || echo 0)"
echo "df $(df -B1 --output=size,used,avail / | tail -1)"`, f, seconds)
}

// diskCleanupScript removes the fill and gives its blocks back to the
// overlay (the drive has discard=unmap: fstrim punches them out of it).
func diskCleanupScript(file string) string {
	return fmt.Sprintf(`rm -f %s; sync; fstrim / >/dev/null 2>&1; true`, exec.Quote(file))
}

// dfLine is df's size, used and avail in bytes.
type dfLine struct{ size, used, avail int64 }

func parseDiskOutput(out string) (device int64, df dfLine, written int64, enospc bool, err error) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "device":
			device, err = strconv.ParseInt(f[2], 10, 64)
		case len(f) == 4 && f[0] == "df":
			var vals [3]int64
			for i := range vals {
				if vals[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
					break
				}
			}
			df = dfLine{vals[0], vals[1], vals[2]}
		case len(f) == 2 && f[0] == "written":
			written, err = strconv.ParseInt(f[1], 10, 64)
		case len(f) == 1 && f[0] == "enospc":
			enospc = true
		}
		if err != nil {
			return 0, dfLine{}, 0, false, fmt.Errorf("parsing %q: %w", l, err)
		}
	}
	return device, df, written, enospc, nil
}

// allocated is the host disk space a file takes (its blocks, not its
// apparent size: a qcow2 with discarded clusters has holes).
func allocated(path string) (int64, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.Size(), fi.Size(), nil
	}
	return st.Blocks * 512, fi.Size(), nil
}

func hostFree(dir string) (int64, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, err
	}
	return int64(s.Bavail) * int64(s.Bsize), nil
}

func gib(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }

// checkDisk fills the guest's root filesystem to ENOSPC and checks that it
// stops at about the template's declared disk size (the device no larger
// than declared, the filesystem full at 80–100% of it), while the host's
// qcow2 overlay grows with the writes and stays within the declared size
// (plus metadata slack) on top of what it held at the start (a resumed
// guest's overlay carries its saved snapshot, which the guest cannot
// write). The fill is removed and trimmed afterwards.
func checkDisk(ctx context.Context, in Input) (Status, string) {
	declared := in.Template.DiskBytes()
	if in.Overlay == "" {
		return Skipped, "no host overlay to measure (the guest's disk is not known to this run)"
	}
	out, err := run(ctx, in.Guest, bash(diskMeasureScript), true, "")
	if err != nil {
		return Skipped, "measuring the guest's disk: " + err.Error()
	}
	device, before, _, _, err := parseDiskOutput(out)
	if err != nil || device == 0 || before.size == 0 {
		return Skipped, fmt.Sprintf("measuring the guest's disk: unexpected output %q (%v)", oneLine(out), err)
	}
	if device > declared {
		return NotHeld, fmt.Sprintf("the guest's disk is %s, declared %s (not filled)", gib(device), gib(declared))
	}
	stat := allocated
	if in.hostStat != nil {
		stat = in.hostStat
	}
	hostBefore, _, err := stat(in.Overlay)
	if err != nil {
		return Skipped, "the host overlay: " + err.Error()
	}
	freeOf := hostFree
	if in.hostFree != nil {
		freeOf = in.hostFree
	}
	free, err := freeOf(filepath.Dir(in.Overlay))
	if err != nil {
		return Skipped, "the host's free space: " + err.Error()
	}
	if need := before.avail + before.size/20 + diskHostMarginBytes; free < need {
		return Skipped, fmt.Sprintf("the host has %s free beside the overlay; filling the guest needs %s (with a margin): not filled", gib(free), gib(need))
	}

	file := "/.gc-isolation-fill-" + in.Canaries.Token[:8]
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		_, _ = run(cctx, in.Guest, bash(diskCleanupScript(file)), true, "")
	}()
	budget := int(in.CheckTimeout.Seconds()) - 30
	if dl, ok := ctx.Deadline(); ok {
		budget = int(time.Until(dl).Seconds()) - 30
	}
	if budget < 30 {
		budget = 30
	}
	start := time.Now()
	out, err = run(ctx, in.Guest, bash(diskFillScript(file, budget)), true, "")
	fillTime := time.Since(start)
	if err != nil {
		return Skipped, "filling the guest's disk: " + err.Error()
	}
	_, after, written, enospc, err := parseDiskOutput(out)
	if err != nil {
		return Skipped, err.Error()
	}
	hostAfter, hostSize, err := stat(in.Overlay)
	if err != nil {
		return Skipped, "the host overlay: " + err.Error()
	}
	growth := hostAfter - hostBefore
	slack := int64(diskSlackBytes) + declared/100
	hostBound := hostBefore + declared + slack
	detail := fmt.Sprintf("declared %s; guest device %s, filesystem full at %s used (%s written in %s); host overlay %s → %s allocated (%s apparent), bound %s",
		gib(declared), gib(device), gib(after.used), gib(written), fillTime.Round(time.Second), gib(hostBefore), gib(hostAfter), gib(hostSize), gib(hostBound))
	if !enospc {
		return Skipped, "the fill did not reach ENOSPC within its time: " + detail + " (" + oneLine(out) + ")"
	}
	var bad []string
	if after.used > declared {
		bad = append(bad, "the guest stored more than its declared disk")
	}
	if after.used < declared*diskFillMinPercent/100 {
		bad = append(bad, fmt.Sprintf("the filesystem filled at less than %d%% of the declared disk", diskFillMinPercent))
	}
	if hostAfter > hostBound {
		bad = append(bad, "the host overlay grew beyond the declared size")
	}
	if len(bad) > 0 {
		return NotHeld, strings.Join(bad, "; ") + ": " + detail
	}
	// The bound is only proven if the writes reached the overlay.
	if written > 0 && growth < written/2 {
		return Skipped, "the overlay did not grow with the guest's writes (zero-detecting or sparse disk): the host-side bound was not exercised: " + detail
	}
	return Held, detail
}
