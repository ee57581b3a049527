package cloudinit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func render(t *testing.T, tpl *catalog.Template, in Input) (*Seed, map[string]any) {
	t.Helper()
	s, err := Render(tpl, in)
	require.NoError(t, err)
	return s, decodeUserData(t, s.UserData)
}

func TestRenderUser(t *testing.T) {
	_, ud := render(t, fixtureDebianDocker(), testInput(t, catalog.ArchX8664))
	client, _, _ := testKeys(t)
	users := ud["users"].([]any)
	require.Len(t, users, 1, "only the template user: no distro default user")
	assert.Equal(t, map[string]any{
		"name":                "gc",
		"shell":               "/bin/bash",
		"sudo":                "ALL=(ALL) NOPASSWD:ALL",
		"groups":              []any{"docker"},
		"lock_passwd":         true,
		"ssh_authorized_keys": []any{client},
	}, users[0])
	assert.Equal(t, true, ud["disable_root"])
	assert.Equal(t, false, ud["ssh_pwauth"])
	assert.Equal(t, true, ud["manage_etc_hosts"])
	assert.Equal(t, true, ud["resize_rootfs"])

	// sudo: false drops the rule; unset means the default, sudo allowed.
	_, ud = render(t, fixtureAlpine(), testInput(t, catalog.ArchX8664))
	u := ud["users"].([]any)[0].(map[string]any)
	assert.NotContains(t, u, "sudo")
	assert.Equal(t, "/bin/ash", u["shell"])
	tpl := fixtureAlpine()
	tpl.User.Sudo = nil
	_, ud = render(t, tpl, testInput(t, catalog.ArchX8664))
	assert.Equal(t, "ALL=(ALL) NOPASSWD:ALL", ud["users"].([]any)[0].(map[string]any)["sudo"])
}

func TestRenderHostKeyPinned(t *testing.T) {
	in := testInput(t, catalog.ArchX8664)
	_, ud := render(t, fixtureDebianDocker(), in)
	assert.Equal(t, true, ud["ssh_deletekeys"], "the image's own host keys must go")
	assert.Equal(t, map[string]any{
		"ed25519_private": in.HostKeyPrivatePEM,
		"ed25519_public":  in.HostKeyPublic,
	}, ud["ssh_keys"])

	// Without a host key the guest keeps cloud-init's defaults.
	in.HostKeyPrivatePEM, in.HostKeyPublic = "", ""
	_, ud = render(t, fixtureDebianDocker(), in)
	assert.NotContains(t, ud, "ssh_keys")
	assert.NotContains(t, ud, "ssh_deletekeys")
}

func TestRenderHostKeyErrors(t *testing.T) {
	client, priv, pub := testKeys(t)
	for name, tc := range map[string]struct {
		priv, pub, want string
	}{
		"only private":   {priv, "", "set both or neither"},
		"only public":    {"", pub, "set both or neither"},
		"mismatch":       {priv, client, "does not match HostKeyPrivatePEM"},
		"garbage pem":    {"-----BEGIN NOTHING-----\n", pub, "input HostKeyPrivatePEM"},
		"garbage public": {priv, "ssh-ed25519 !!!", "input HostKeyPublic"},
	} {
		t.Run(name, func(t *testing.T) {
			in := testInput(t, catalog.ArchX8664)
			in.HostKeyPrivatePEM, in.HostKeyPublic = tc.priv, tc.pub
			_, err := Render(fixtureDebianDocker(), in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRenderPackages(t *testing.T) {
	s, ud := render(t, fixtureDebianDocker(), testInput(t, catalog.ArchX8664))
	assert.Equal(t, []any{"docker.io", "uidmap", "dbus-user-session"}, ud["packages"], "de-duplicated, in step order")
	assert.Equal(t, true, ud["package_update"])
	run := writeFiles(t, ud)[RunnerPath]["content"].(string)
	assert.Contains(t, run, "for p in docker.io uidmap dbus-user-session; do")
	assert.NotContains(t, string(s.UserData), "Packages are baked")
}

func TestRenderBakedPackages(t *testing.T) {
	tpl, img := fixtureDebianBaked()
	in := testInput(t, catalog.ArchX8664)
	in.Image = img
	s, ud := render(t, tpl, in)
	assert.NotContains(t, ud, "packages", "baked packages are in the image")
	assert.NotContains(t, ud, "package_update", "the guest must need no network")
	assert.NotContains(t, ud, "package_upgrade")
	assert.Contains(t, string(s.UserData), "# Packages are baked into the image")
	// The runner still checks them: a bake that missed one fails loudly.
	run := writeFiles(t, ud)[RunnerPath]["content"].(string)
	assert.Contains(t, run, "for p in containerd runc; do")

	// Bake false (or a downloaded image) installs them at boot.
	in.Image.Build.Bake = false
	_, ud = render(t, tpl, in)
	assert.Equal(t, []any{"containerd", "runc"}, ud["packages"])
}

func TestRenderStepOrderAndModes(t *testing.T) {
	_, ud := render(t, fixtureDebianDocker(), testInput(t, catalog.ArchX8664))
	files := writeFiles(t, ud)

	// Scripts are numbered across script steps (boot included) in order;
	// steps for other arches or families are left out.
	run := files[RunnerPath]["content"].(string)
	var lines []string
	for _, l := range strings.Split(run, "\n") {
		if strings.HasPrefix(l, "run_step ") {
			lines = append(lines, l)
		}
	}
	assert.Equal(t, []string{
		"run_step 02-enable-docker system",
		"run_step 03-rootless-check-docker user",
	}, lines)
	assert.NotContains(t, run, "arm-only")
	assert.NotContains(t, run, "fedora-only")
	assert.Less(t, strings.Index(run, "START packages"), strings.Index(run, "run_step 02"), "packages are checked first")
	assert.True(t, strings.HasSuffix(run, "run_step 03-rootless-check-docker user\nfinish ok\nlog \"provisioning finished: ok\"\n"))

	sys := files[ProvisionDir+"/02-enable-docker.sh"]
	require.NotNil(t, sys)
	assert.Equal(t, "#!/bin/sh\nset -e\nsystemctl enable --now docker\nusermod -aG docker \"$GUESTCATALOG_USER\"\n", sys["content"], "no #! line: sh with set -e")
	assert.Equal(t, "0755", sys["permissions"])
	usr := files[ProvisionDir+"/03-rootless-check-docker.sh"]
	require.NotNil(t, usr)
	assert.True(t, strings.HasPrefix(usr["content"].(string), "#!/bin/bash\nset -eu -o pipefail\n"), "own #! line kept as is")

	// Boot steps run from bootcmd on every boot, with the environment.
	boot := ud["bootcmd"].([]any)
	require.Len(t, boot, 1)
	assert.Contains(t, boot[0], "export PARAM_mirror=http://deb.debian.org/debian\n")
	assert.Contains(t, boot[0], "modprobe overlay || true\n")
	assert.Contains(t, boot[0], "exec "+BootDir+"/01-load-overlay-module.sh\n")

	// runcmd runs only the runner.
	assert.Equal(t, []any{[]any{"/bin/sh", RunnerPath}}, ud["runcmd"])

	// On aarch64 the arm-only step joins.
	_, ud = render(t, fixtureDebianDocker(), testInput(t, catalog.ArchAarch64))
	assert.Contains(t, writeFiles(t, ud)[RunnerPath]["content"], "run_step 04-arm-only system\n")
}

func TestRenderDataFiles(t *testing.T) {
	_, ud := render(t, fixtureDebianDocker(), testInput(t, catalog.ArchX8664))
	files := writeFiles(t, ud)
	apt := files["/etc/apt/apt.conf.d/90guestcatalog"]
	assert.Equal(t, map[string]any{
		"path":        "/etc/apt/apt.conf.d/90guestcatalog",
		"content":     "APT::Install-Recommends \"false\";\n",
		"permissions": "0644",
	}, apt, "root-owned data is written early, before packages")
	home := files["/home/gc/.config/docker/daemon.json"]
	assert.Equal(t, true, home["defer"], "a file owned by the template user waits until the user exists")
	assert.Equal(t, "gc:gc", home["owner"])

	env := files[EnvPath]
	assert.Equal(t, "0644", env["permissions"])
	assert.Equal(t, "# guestcatalog: environment of the provisioning scripts and probes.\n"+
		"# Generated; values are data, quoted for POSIX sh.\n"+
		"export GUESTCATALOG_USER=gc\n"+
		"export DOCKER_BUILDKIT=1\n"+
		"export PARAM_mirror=http://deb.debian.org/debian\n"+
		"export PARAM_rootless=true\n", env["content"])

	// Text that is not UTF-8 travels base64-encoded.
	tpl := fixtureAlpine()
	tpl.Provision = append(tpl.Provision, catalog.Step{Mode: catalog.ModeData, Path: "/etc/blob", Content: "\xff\xfe\x00bin"})
	_, ud = render(t, tpl, testInput(t, catalog.ArchX8664))
	blob := writeFiles(t, ud)["/etc/blob"]
	assert.Equal(t, "b64", blob["encoding"])
	assert.Equal(t, "//4AYmlu", blob["content"])
}

func TestDataFileDefer(t *testing.T) {
	for _, tc := range []struct {
		owner, path string
		deferred    bool
	}{
		{"", "/etc/x", false},
		{"root", "/etc/x", false},
		{"root:root", "/etc/x", false},
		{"gc", "/etc/x", true},
		{"root:docker", "/etc/docker/x", true},
		{"", "/home/gc/.bashrc", true},
	} {
		f, err := dataFile(catalog.Step{Mode: catalog.ModeData, Path: tc.path, Owner: tc.owner}, "gc", nil)
		require.NoError(t, err)
		_, got := plainTree(f).(map[string]any)["defer"]
		assert.Equal(t, tc.deferred, got, "owner %q path %q", tc.owner, tc.path)
	}
}

func TestRenderValidationReportsEverything(t *testing.T) {
	tpl := fixtureDebianDocker()
	tpl.Env["BAD-NAME"] = "x"
	tpl.Env["PARAM_mirror"] = "shadow"
	tpl.Params["with space"] = "x"
	tpl.Provision = append(tpl.Provision,
		catalog.Step{Mode: "shell", Script: "true"},
		catalog.Step{Mode: catalog.ModeSystem, Description: "empty"},
		catalog.Step{Mode: catalog.ModePackages, Packages: []string{"ok", "bad;rm -rf /"}},
		catalog.Step{Mode: catalog.ModeData, Path: "relative/path"},
		catalog.Step{Mode: catalog.ModeData, Path: EnvPath},
		catalog.Step{Mode: catalog.ModeData, Path: "/etc/x", Permissions: "644"},
	)
	in := testInput(t, catalog.ArchX8664)
	in.AuthorizedKeys = nil
	in.Hostname = "Not_A_Host"
	_, err := Render(tpl, in)
	require.Error(t, err)
	for _, want := range []string{
		`env.BAD-NAME: "BAD-NAME" is not a shell variable name`,
		`env.PARAM_mirror: PARAM_mirror is reserved: the PARAM_ prefix is reserved for params`,
		`params.with space: "PARAM_with space" is not a shell variable name`,
		`provision[9]: mode "shell": unknown`,
		`provision[10] (empty): script: must be set for mode system`,
		`provision[11]: package "bad;rm -rf /": not a package name`,
		`provision[12]: path "relative/path": must be absolute and clean`,
		`provision[13]: path "/etc/guestcatalog/env": is written by guestcatalog`,
		`provision[14]: permissions "644": must be octal like 0644`,
		`input AuthorizedKeys: at least one key is needed to log in`,
		`input Hostname "Not_A_Host": not a lowercase RFC 1123 host name`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestRenderInputErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*catalog.Template, *Input)
		want   string
	}{
		"no arch":        {func(_ *catalog.Template, in *Input) { in.Arch = "" }, "input Arch: must be set"},
		"arch mismatch":  {func(_ *catalog.Template, in *Input) { in.Arch = catalog.ArchAarch64 }, "does not match Arch aarch64"},
		"no user":        {func(t *catalog.Template, _ *Input) { t.User = nil }, "user.name: must be set"},
		"no distro":      {func(t *catalog.Template, _ *Input) { t.Distro = nil }, "distro.family: must be set"},
		"bad key":        {func(_ *catalog.Template, in *Input) { in.AuthorizedKeys = []string{"not a key"} }, "input AuthorizedKeys[0]"},
		"two-line key":   {func(_ *catalog.Template, in *Input) { in.AuthorizedKeys[0] += "\nssh-rsa AAAA" }, "must be one line"},
		"bad mac":        {func(_ *catalog.Template, in *Input) { in.MACAddress = "52:54:00" }, "not an Ethernet MAC address"},
		"bad user name":  {func(t *catalog.Template, _ *Input) { t.User.Name = "Bad User" }, "is not a user name"},
		"NUL in a param": {func(t *catalog.Template, _ *Input) { t.Params["x"] = "a\x00b" }, "cannot hold a NUL byte"},
	} {
		t.Run(name, func(t *testing.T) {
			tpl, in := fixtureDebianDocker(), testInput(t, catalog.ArchX8664)
			tc.mutate(tpl, &in)
			_, err := Render(tpl, in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Render(nil, testInput(t, catalog.ArchX8664))
	assert.Error(t, err)
}

func TestRenderMetaData(t *testing.T) {
	in := testInput(t, catalog.ArchX8664)
	s, _ := render(t, fixtureDebianDocker(), in)
	again, _ := render(t, fixtureDebianDocker(), in)
	assert.Equal(t, s, again, "rendering is deterministic")
	assert.Regexp(t, `^instance-id: iid-[0-9a-f]{16}\nlocal-hostname: debian-13-docker\n$`, string(s.MetaData))

	// The derived instance ID follows the content: new keys, new instance.
	in2 := in
	in2.HostKeyPrivatePEM, in2.HostKeyPublic = "", ""
	other, _ := render(t, fixtureDebianDocker(), in2)
	assert.NotEqual(t, s.MetaData, other.MetaData)

	in.InstanceID, in.Hostname = "i-1234", "node1.example"
	s, _ = render(t, fixtureAlpine(), in)
	assert.Equal(t, "instance-id: i-1234\nlocal-hostname: node1.example\n", string(s.MetaData))

	tpl := fixtureAlpine()
	tpl.Name = "alpine-3.23_edge.podman"
	assert.Equal(t, "alpine-3-23-edge-podman", DefaultHostname(tpl.Name))
}

func TestNetworkConfig(t *testing.T) {
	in := testInput(t, catalog.ArchX8664)
	s, _ := render(t, fixtureDebianDocker(), in)
	var v any
	require.NoError(t, yamlUnmarshal(s.NetworkConfig, &v))
	assert.Nil(t, v, "no MAC: only comments, so cloud-init uses its fallback")

	in.MACAddress = "52:54:00:AB:cd:01"
	s, _ = render(t, fixtureDebianDocker(), in)
	assert.Equal(t, "# guestcatalog: DHCP on the NIC with MAC 52:54:00:ab:cd:01.\n"+
		"version: 2\n"+
		"ethernets:\n"+
		"  eth0:\n"+
		"    match:\n"+
		"      macaddress: \"52:54:00:ab:cd:01\"\n"+
		"    set-name: eth0\n"+
		"    dhcp4: true\n", string(s.NetworkConfig))
}

func TestTemplateEnv(t *testing.T) {
	env, err := TemplateEnv(fixtureDebianDocker())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"GUESTCATALOG_USER": "gc",
		"DOCKER_BUILDKIT":   "1",
		"PARAM_mirror":      "http://deb.debian.org/debian",
		"PARAM_rootless":    "true",
	}, env)
	tpl := fixtureDebianDocker()
	tpl.Env["GUESTCATALOG_USER"] = "root"
	_, err = TemplateEnv(tpl)
	assert.ErrorContains(t, err, "GUESTCATALOG_USER is set by guestcatalog")
}

func TestParseMarker(t *testing.T) {
	m, err := ParseMarker([]byte("ok\n"))
	require.NoError(t, err)
	assert.Equal(t, Marker{OK: true}, m)
	m, err = ParseMarker([]byte("failed: 03-rootless-check-docker exit 127\n"))
	require.NoError(t, err)
	assert.Equal(t, Marker{Step: "03-rootless-check-docker", ExitCode: 127}, m)
	assert.Equal(t, "failed: 03-rootless-check-docker exit 127", m.String())
	for _, bad := range []string{"", "running", "failed: x", "failed:  exit 1", "failed: x exit y"} {
		_, err := ParseMarker([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}
