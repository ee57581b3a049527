// Package qemu builds QEMU command lines (a pure Cmdline(Spec)), starts and
// supervises QEMU processes (QMP status, events, savevm, graceful
// shutdown), chooses the accelerator by what the guest does (KVM where it
// makes progress, TCG otherwise), and removes what crashed runs left
// behind (Gc).
//
// # No QEMU outlives its owner
//
// Leaks are prevented in layers, each catching what the one before it
// cannot:
//
//  1. The context given to Start bounds the QEMU process, like
//     exec.CommandContext: when it ends, QEMU gets `quit` over QMP, then
//     SIGKILL after a short grace (interval default/kill-grace). Callers
//     (framework/machine, specs via DeferCleanup, Ctrl-C through
//     signal.NotifyContext) normally call Shutdown first: ACPI powerdown,
//     then quit, then SIGKILL. Both reap the process and remove the run
//     dir's transient files.
//  2. A parent that dies without cleaning up (SIGKILL, a Ginkgo or
//     go test timeout that exits the process, a panic) takes QEMU with
//     it: QEMU is started with Pdeathsig=SIGKILL. Linux sends that signal
//     when the *thread* that forked the child exits, so the child is
//     forked from a goroutine locked to its OS thread that stays blocked
//     in wait4 until QEMU exits; the Go runtime never reuses or ends that
//     thread meanwhile. QEMU also runs in its own process group, so a
//     terminal's Ctrl-C reaches only the parent, which shuts QEMU down in
//     order.
//  3. Whatever still escapes (the host rebooted mid-run, a parent killed
//     while forking) is found by Gc: every run dir holds an owner.json
//     naming the owning process and its start time; a run dir whose owner
//     is gone (PID reuse is detected by the start time in /proc) is
//     removed, after killing the QEMU processes whose command line names
//     it. Nothing without a valid owner.json is touched.
//
// Callers that create files Gc should remove after a crash (an overlay, a
// seed) put them in a RunDir of their own (NewRunDir) and pass it with
// WithRunDir; they remove it themselves after Shutdown.
//
// # Accelerator by behaviour
//
// /dev/kvm may exist and create VMs while its guests hang (nested KVM on
// the project's machines: -cpu host aborts with "failed to set MSR", other
// CPU models spin silently after the firmware). Launch with auto therefore
// starts KVM only where KVMUsable, keeps it only if the console shows a
// kernel line within accel/kvm-stall, and otherwise restarts the same spec
// under TCG, recording an AccelDecision with the reason. Probe and
// ProbeAccel do the same judgement with a short probe boot (doctor).
//
// # Snapshots
//
// SaveVM stores RAM and device state in the qcow2 overlay (savevm); a
// Spec with LoadVM resumes it, which makes a warm start take about a
// second instead of a boot. Measured with QEMU 7.2: a read-only seed
// (virtio-blk readonly=on, or a cdrom) does not block savevm, but any
// writable raw drive does ("Device '…' is writable but does not support
// snapshots"), including a raw copy of the UEFI variable store; keep the
// vars as qcow2 (CreateUEFIVars with a .qcow2 name). Loading requires the
// same device set (the seed must still be attached), the same accelerator
// and CPU model; host ports of forwards may differ.
//
// Saved guests (framework/provisioned) use neither: loadvm needs the
// snapshot in the top image (a copy of the whole disk per run) and reads
// all RAM before the guest runs. A Spec with MemoryFile and MemoryShared
// keeps guest RAM in a file; SaveState then writes only the device state
// (x-ignore-shared leaves the shared RAM out of the stream, well under a
// MB). A Spec with MemoryFile (not shared) and Incoming maps the saved RAM
// copy-on-write and LoadState feeds the state: the guest runs after tens
// of milliseconds and faults its RAM in as it touches it, over a thin
// overlay backed by the saved disk; nothing saved is written.
package qemu
