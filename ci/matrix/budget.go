package matrix

import "math"

// Budget is how long one verification is expected to take and may take, in
// minutes, on a runner with KVM.
type Budget struct {
	// Estimate balances shards; it is not a limit.
	Estimate int
	// Timeout becomes the job's timeout-minutes.
	Timeout int
}

// Budgets is the table that turns a template into minutes: by engine, scaled
// per arch, plus a margin per tier. Change the table, not the workflow.
type Budgets struct {
	// Default applies to templates whose engine has no entry (and to
	// templates without an engine).
	Default Budget
	// Engines by engine name (catalog.Engine.Name).
	Engines map[string]Budget
	// ArchFactor multiplies both figures per arch (missing: 1).
	ArchFactor map[string]float64
	// TierMargin adds minutes to the timeout per tier (missing: 0).
	TierMargin map[string]int
	// MaxTimeout caps the timeout (GitHub-hosted jobs stop at 360 minutes).
	MaxTimeout int
}

// DefaultBudgets is the table the CLI uses. Kubernetes distributions download
// and start a control plane, so they get longer; kubeadm and Usernetes longest.
// GitHub's arm64 runners may have no usable /dev/kvm, so QEMU can fall back to
// TCG there: aarch64 gets twice the minutes.
func DefaultBudgets() Budgets {
	return Budgets{
		Default: Budget{Estimate: 12, Timeout: 45},
		Engines: map[string]Budget{
			"containerd": {Estimate: 12, Timeout: 45},
			"docker":     {Estimate: 15, Timeout: 45},
			"podman":     {Estimate: 15, Timeout: 45},
			"apptainer":  {Estimate: 15, Timeout: 45},
			"k3s":        {Estimate: 20, Timeout: 60},
			"k0s":        {Estimate: 20, Timeout: 60},
			"rke2":       {Estimate: 30, Timeout: 75},
			"k8s":        {Estimate: 35, Timeout: 90},
			"usernetes":  {Estimate: 35, Timeout: 90},
		},
		ArchFactor: map[string]float64{"x86_64": 1, "aarch64": 2},
		TierMargin: map[string]int{"nightly": 0, "experimental": 15},
		MaxTimeout: 360,
	}
}

// For returns the budget of one template (by engine and tier) on one arch.
func (b Budgets) For(engine, tier, arch string) Budget {
	base, ok := b.Engines[engine]
	if !ok {
		base = b.Default
	}
	f, ok := b.ArchFactor[arch]
	if !ok || f <= 0 {
		f = 1
	}
	out := Budget{
		Estimate: int(math.Ceil(float64(base.Estimate) * f)),
		Timeout:  int(math.Ceil(float64(base.Timeout)*f)) + b.TierMargin[tier],
	}
	if out.Estimate < 1 {
		out.Estimate = 1
	}
	if out.Timeout < 1 {
		out.Timeout = 1
	}
	if b.MaxTimeout > 0 && out.Timeout > b.MaxTimeout {
		out.Timeout = b.MaxTimeout
	}
	return out
}
