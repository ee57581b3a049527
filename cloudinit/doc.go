// Package cloudinit renders the NoCloud seed (user-data, meta-data,
// network-config) that provisions a guest from a resolved catalog template,
// and writes it as a directory or as a "cidata" ISO 9660 image.
//
// # What the guest does with it
//
// cloud-init creates the template user (locked password, the given
// authorized keys, passwordless sudo unless user.sudo is false), deletes
// the image's SSH host keys and installs the pinned one (sshd may still
// generate other key types on some distros: clients pin by restricting
// their host key algorithm to the pinned key's type), grows the root
// filesystem, installs the template's `packages` steps (not when the image
// bakes them), writes the `data` steps, runs the `boot` steps on every boot
// (bootcmd, from BootDir) and runs RunnerPath once (runcmd).
//
// The runner executes the `system` steps as root and the `user` steps as
// the template user with a login environment (runuser -l, else su -l,
// sudo -i, doas or busybox su; on systemd the user's manager is started
// first with loginctl enable-linger, and XDG_RUNTIME_DIR and the session
// bus are set), in template order, each from its own script
// ProvisionDir/NN-<slug>.sh. A script without a `#!` line runs under
// /bin/sh with `set -e`. Every script sees EnvPath's variables:
// GUESTCATALOG_USER, the template's env and PARAM_<name> for each param,
// single-quoted so that a value is data, never code. The runner itself
// never sources EnvPath: each step does, in its own subshell, so no env
// entry can move the runner's log, marker or steps, or change the PATH,
// IFS or preloaded libraries of the programs it runs (and Render, like
// catalog validation, refuses the names of catalog.ReservedEnv). The runner logs to
// LogPath and stops at the first failure; MarkerPath then holds
// "failed: <NN-slug> exit <code>" and cloud-init reports an error, or "ok"
// when every step passed. Before the steps it checks that every package is
// installed, because cloud-init goes on to runcmd even when its package
// module failed.
//
// Packages are installed by cloud-init before any script runs, whatever
// their place among the steps.
//
// # network-config
//
// A version 2 entry matched by a name glob (`e*`) cannot serve every image:
// netplan rejects a glob as the entry's ID ("Definition ID 'e*' must not use
// globbing"), and cloud-init's own renderers (networkd, eni, sysconfig,
// NetworkManager) use the ID as the interface name. So network-config either
// pins the NIC by MAC address (Input.MACAddress, renamed eth0, which every
// renderer supports), or holds only comments, and cloud-init's fallback
// configures DHCP on the first Ethernet interface.
//
// # YAML
//
// The seed files are written by a small emitter of this package, not by a
// general marshaller, and every document is decoded again and compared
// with its source before Render returns it (see yaml.go).
package cloudinit
