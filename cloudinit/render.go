package cloudinit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// Paths in the guest. MarkerPath and LogPath are the cross-package contract
// with the framework; EnvPath is what probes may source.
const (
	// MarkerPath holds MarkerOK once provisioning succeeded, or
	// "failed: <step> exit <code>"; it is absent while provisioning runs.
	MarkerPath = catalog.GuestStateDir + "/provisioned"
	// LogPath receives every step's output and timestamped START/OK/FAILED lines.
	LogPath = catalog.GuestLogPath
	// EnvPath exports GUESTCATALOG_USER, the template's env and PARAM_<name>.
	EnvPath = catalog.GuestConfigDir + "/env"
	// ProvisionDir holds the step scripts (NN-<slug>.sh) and RunnerPath.
	ProvisionDir = catalog.GuestStateDir + "/provision"
	// RunnerPath is the script cloud-init's runcmd runs.
	RunnerPath = ProvisionDir + "/run.sh"
	// BootDir receives the boot steps' scripts, rewritten on every boot.
	// Not under /run: systemd mounts it noexec.
	BootDir = catalog.GuestStateDir + "/boot"
)

// EnvUser names the template user in the environment of scripts and probes.
const EnvUser = "GUESTCATALOG_USER"

// MarkerOK is the marker's content after a successful provisioning.
const MarkerOK = "ok"

// Input is what a seed needs besides the template.
type Input struct {
	// Arch selects the steps (`when.arches`); it must match Image.Arch.
	Arch string
	// Image is the image the guest boots; with Build.Bake the template's
	// packages are in it already and the seed installs none.
	Image catalog.Image
	// Hostname defaults to the template name made a valid host name.
	Hostname string
	// InstanceID defaults to "iid-" and a hash of the rendered seed, so
	// the same inputs keep the same instance (cloud-init runs once).
	InstanceID string
	// AuthorizedKeys are the public keys (authorized_keys lines) that may
	// log in as the template user. At least one is required.
	AuthorizedKeys []string
	// HostKeyPrivatePEM and HostKeyPublic pin the guest's SSH host key:
	// an OpenSSH private key (ed25519, ecdsa or rsa) and its public key as
	// an authorized_keys line. Both or neither; without them the guest
	// generates its own keys and the host key cannot be pinned.
	HostKeyPrivatePEM string
	HostKeyPublic     string
	// MACAddress, if set, pins the network configuration to the NIC with
	// this address (cloud-init renames it eth0 and runs DHCP on it). If
	// empty, network-config leaves the choice to cloud-init's fallback:
	// DHCP on the first Ethernet interface. See network-config in doc.go.
	MACAddress string
}

// Seed is the content of a NoCloud seed.
type Seed struct {
	UserData      []byte
	MetaData      []byte
	NetworkConfig []byte
}

// Seed file names, as NoCloud reads them.
const (
	FileUserData      = "user-data"
	FileMetaData      = "meta-data"
	FileNetworkConfig = "network-config"
)

var (
	templateName = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*$`)
	userName     = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
	hostLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	filePerms    = regexp.MustCompile(`^0[0-7]{3}$`)
)

// Render builds the NoCloud seed for a resolved template on in.Arch: a user
// with the given keys and passwordless sudo, the pinned host key, the
// template's packages (unless baked into in.Image), data files, boot steps,
// and a runner that executes the system and user steps in order and leaves
// MarkerPath. The output is deterministic for the same inputs.
func Render(t *catalog.Template, in Input) (*Seed, error) {
	// The same bound as catalog validation, checked before anything is
	// built: an alias fan-out could otherwise render hundreds of MB.
	if t != nil {
		if n := catalog.SeedBytes(t); n > catalog.MaxSeedBytes {
			return nil, fmt.Errorf("rendering seed for %s: the seed would be about %d bytes, over the limit of %d", catalog.Quote(t.Name), n, catalog.MaxSeedBytes)
		}
	}
	p, err := plan(t, in)
	if err != nil {
		return nil, err
	}
	userData, err := encodeYAML(p.header, p.userData)
	if err != nil {
		return nil, fmt.Errorf("rendering user-data for %s: %w", t.Name, err)
	}
	if len(userData) > catalog.MaxSeedBytes {
		return nil, fmt.Errorf("rendering seed for %s: user-data is %d bytes, over the limit of %d", catalog.Quote(t.Name), len(userData), catalog.MaxSeedBytes)
	}
	if err := checkRoundTrip(userData, p.userData); err != nil {
		return nil, fmt.Errorf("rendering user-data for %s: %w", t.Name, err)
	}
	network, err := networkConfig(in.MACAddress)
	if err != nil {
		return nil, err
	}
	id := in.InstanceID
	if id == "" {
		h := sha256.New()
		h.Write(userData)
		h.Write([]byte{0})
		h.Write(network)
		h.Write([]byte{0})
		h.Write([]byte(p.hostname))
		id = "iid-" + hex.EncodeToString(h.Sum(nil))[:16]
	}
	meta := mapping{{"instance-id", id}, {"local-hostname", p.hostname}}
	metaData, err := encodeYAML(nil, meta)
	if err != nil {
		return nil, fmt.Errorf("rendering meta-data: %w", err)
	}
	if err := checkRoundTrip(metaData, meta); err != nil {
		return nil, fmt.Errorf("rendering meta-data: %w", err)
	}
	return &Seed{UserData: userData, MetaData: metaData, NetworkConfig: network}, nil
}

// TemplateEnv is the environment every provisioning script and probe sees:
// GUESTCATALOG_USER, the template's env, and each param as PARAM_<name>.
// Names must be shell variable names; a param must not shadow an env entry.
func TemplateEnv(t *catalog.Template) (map[string]string, error) {
	vars := map[string]string{}
	var errs []error
	if t.User == nil || t.User.Name == "" {
		errs = append(errs, errors.New("user.name: must be set (is the template resolved?)"))
	} else {
		vars[EnvUser] = t.User.Name
	}
	add := func(field, name, value string, param bool) {
		why, reserved := catalog.ReservedEnv(name)
		switch {
		case !catalog.ValidEnvName(name):
			errs = append(errs, fmt.Errorf("%s: %q is not a shell variable name", field, name))
		case name == EnvUser:
			errs = append(errs, fmt.Errorf("%s: %s is set by guestcatalog", field, EnvUser))
		case reserved && !param:
			errs = append(errs, fmt.Errorf("%s: %s is reserved: %s", field, name, why))
		case strings.ContainsRune(value, 0):
			errs = append(errs, fmt.Errorf("%s: a value cannot hold a NUL byte", field))
		case !utf8.ValidString(value):
			errs = append(errs, fmt.Errorf("%s: value is not valid UTF-8", field))
		default:
			if _, dup := vars[name]; dup {
				errs = append(errs, fmt.Errorf("%s: %s is already set by env", field, name))
				return
			}
			vars[name] = value
		}
	}
	for _, k := range sortedKeys(t.Env) {
		add("env."+k, k, t.Env[k], false)
	}
	for _, k := range sortedKeys(t.Params) {
		add("params."+k, "PARAM_"+k, t.Params[k], true)
	}
	if len(t.Artifacts) > 0 {
		vars[EnvArtifacts] = catalog.GuestArtifactsDir
	}
	return vars, errors.Join(errs...)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// seedPlan is the user-data tree and what meta-data needs.
type seedPlan struct {
	header   []string
	userData mapping
	hostname string
}

func plan(t *catalog.Template, in Input) (*seedPlan, error) {
	if t == nil {
		return nil, errors.New("rendering seed: nil template")
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !templateName.MatchString(t.Name) {
		bad("name: %q is not a template name", t.Name)
	}
	family := ""
	if t.Distro == nil || t.Distro.Family == "" {
		bad("distro.family: must be set (is the template resolved?)")
	} else {
		family = t.Distro.Family
	}
	if in.Arch == "" {
		bad("input Arch: must be set")
	} else if in.Image.Arch != "" && in.Image.Arch != in.Arch {
		bad("input Image.Arch %s: does not match Arch %s", in.Image.Arch, in.Arch)
	}
	vars, err := TemplateEnv(t)
	if err != nil {
		errs = append(errs, err)
	}
	user := ""
	if t.User != nil {
		user = t.User.Name
		if user != "" && !userName.MatchString(user) {
			bad("user.name: %q is not a user name", user)
		}
	}
	hostname := in.Hostname
	if hostname == "" {
		hostname = DefaultHostname(t.Name)
	}
	if err := checkHostname(hostname); err != nil {
		errs = append(errs, err)
	}
	if len(in.AuthorizedKeys) == 0 {
		bad("input AuthorizedKeys: at least one key is needed to log in")
	}
	keys := make(seq, 0, len(in.AuthorizedKeys))
	for i, k := range in.AuthorizedKeys {
		k = strings.TrimSpace(k)
		if strings.ContainsAny(k, "\r\n") {
			bad("input AuthorizedKeys[%d]: must be one line", i)
			continue
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			bad("input AuthorizedKeys[%d]: %v", i, err)
			continue
		}
		keys = append(keys, k)
	}
	hostKeys, err := hostKeyConfig(in.HostKeyPrivatePEM, in.HostKeyPublic)
	if err != nil {
		errs = append(errs, err)
	}

	var (
		packages  seq
		seenPkg   = map[string]bool{}
		pkgNames  []string
		bootcmd   seq
		dataFiles seq
		scripts   seq
		runner    []runnerStep
		reserved  = map[string]bool{EnvPath: true, RunnerPath: true, MarkerPath: true, LogPath: true}
		n         int
	)
	// The steps of (*catalog.Template).StepsFor, filtered here to keep the
	// template's own step indexes for messages.
	for i, s := range t.Provision {
		if !s.When.Matches(t.Distro, in.Arch) {
			continue
		}
		field := fmt.Sprintf("provision[%d]", i)
		if s.Description != "" {
			field += " (" + catalog.Sanitize(s.Description) + ")"
		}
		switch s.Mode {
		case catalog.ModePackages:
			if len(s.Packages) == 0 {
				bad("%s: packages: must list at least one package", field)
			}
			for _, pkg := range s.Packages {
				if !catalog.ValidPackageName(pkg) {
					bad("%s: package %q: not a package name", field, pkg)
					continue
				}
				if !seenPkg[pkg] {
					seenPkg[pkg] = true
					pkgNames = append(pkgNames, pkg)
					packages = append(packages, pkg)
				}
			}
		case catalog.ModeData:
			f, err := dataFile(s, user, reserved)
			if err != nil {
				bad("%s: %v", field, err)
				continue
			}
			dataFiles = append(dataFiles, f)
		case catalog.ModeSystem, catalog.ModeUser, catalog.ModeBoot:
			if strings.TrimSpace(s.Script) == "" {
				bad("%s: script: must be set for mode %s", field, s.Mode)
				continue
			}
			if strings.ContainsRune(s.Script, 0) || !utf8.ValidString(s.Script) {
				bad("%s: script: must be UTF-8 text without NUL bytes", field)
				continue
			}
			n++
			name := fmt.Sprintf("%02d-%s", n, slug(s.Description, s.Mode))
			if s.Mode == catalog.ModeBoot {
				bootcmd = append(bootcmd, bootCommand(name, s.Script, vars))
				continue
			}
			scripts = append(scripts, writeFile(ProvisionDir+"/"+name+".sh", scriptText(s.Script), "0755", "", false))
			runner = append(runner, runnerStep{Name: name, User: s.Mode == catalog.ModeUser})
		default:
			bad("%s: mode %q: unknown", field, s.Mode)
		}
	}
	if len(t.Artifacts) > 0 && in.Arch != "" {
		script, err := artifactsScript(t, in.Arch)
		if err != nil {
			errs = append(errs, err)
		} else {
			scripts = append(seq{writeFile(ProvisionDir+"/"+ArtifactsStep+".sh", script, "0755", "", false)}, scripts...)
			runner = append([]runnerStep{{Name: ArtifactsStep}}, runner...)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("rendering seed for %s: %w", t.Name, errors.Join(errs...))
	}

	baked := in.Image.Build != nil && in.Image.Build.Bake
	files := dataFiles
	files = append(files, writeFile(EnvPath, envFile(vars), "0644", "", false))
	files = append(files, scripts...)
	files = append(files, writeFile(RunnerPath, runnerScript(t.Name, user, runner, packageCheck(family, pkgNames)), "0755", "", false))

	u := mapping{{"name", user}}
	if t.User.Shell != "" {
		u.set("shell", t.User.Shell)
	}
	if t.User.Sudo == nil || *t.User.Sudo {
		u.set("sudo", "ALL=(ALL) NOPASSWD:ALL")
	}
	if len(t.User.Groups) > 0 {
		groups := make(seq, len(t.User.Groups))
		for i, g := range t.User.Groups {
			groups[i] = g
		}
		u.set("groups", groups)
	}
	u.set("lock_passwd", true)
	u.set("ssh_authorized_keys", keys)

	var doc mapping
	doc.set("manage_etc_hosts", true)
	doc.set("users", seq{u})
	doc.set("disable_root", true)
	doc.set("ssh_pwauth", false)
	if hostKeys != nil {
		// Remove the image's host keys and install ours: the framework pins it.
		doc.set("ssh_deletekeys", true)
		doc.set("ssh_keys", hostKeys)
	}
	doc.set("growpart", mapping{{"mode", "auto"}, {"devices", seq{"/"}}})
	doc.set("resize_rootfs", true)
	if len(packages) > 0 && !baked {
		doc.set("package_update", true)
		doc.set("packages", packages)
	}
	home := "/home/" + user
	bootcmd = append(mountBootcmd(t, home), bootcmd...)
	if len(bootcmd) > 0 {
		doc.set("bootcmd", bootcmd)
	}
	doc.set("write_files", files)
	doc.set("runcmd", append(mountRuncmd(t, user, home), seq{"/bin/sh", RunnerPath}))
	doc.set("final_message", "guestcatalog: cloud-init finished after $UPTIME seconds")

	header := []string{
		"#cloud-config",
		fmt.Sprintf("# guestcatalog template %s, arch %s. Generated; do not edit.", t.Name, in.Arch),
	}
	if baked && len(packages) > 0 {
		header = append(header, "# Packages are baked into the image: nothing is installed at boot.")
	}
	return &seedPlan{header: header, userData: doc, hostname: hostname}, nil
}

// writeFile is one write_files entry. Text is written as a literal block
// when it reads back exactly, base64 otherwise.
func writeFile(path, content, perms, owner string, deferred bool) mapping {
	f := mapping{{"path", path}}
	if utf8.ValidString(content) {
		f.set("content", content)
	} else {
		f.set("encoding", "b64")
		f.set("content", base64.StdEncoding.EncodeToString([]byte(content)))
	}
	if perms != "" {
		f.set("permissions", perms)
	}
	if owner != "" {
		f.set("owner", owner)
	}
	if deferred {
		f.set("defer", true)
	}
	return f
}

// dataFile turns a data step into a write_files entry. It is deferred (to
// cloud-init's final stage, after users and packages exist, still before
// any script) when its owner is not root or it lies under /home: written in
// the init stage, before the user exists, such a file would fail to chown or
// would create the home directory as root.
func dataFile(s catalog.Step, user string, reserved map[string]bool) (mapping, error) {
	p := s.Path
	switch {
	case p == "":
		return nil, errors.New("path: must be set")
	case !path.IsAbs(p) || path.Clean(p) != p:
		return nil, fmt.Errorf("path %q: must be absolute and clean", p)
	case reserved[p] || catalog.ReservedGuestPath(p):
		return nil, fmt.Errorf("path %q: is written by guestcatalog", p)
	}
	if s.Permissions != "" && !filePerms.MatchString(s.Permissions) {
		return nil, fmt.Errorf("permissions %q: must be octal like 0644", s.Permissions)
	}
	if strings.ContainsAny(s.Owner, " \t\n") {
		return nil, fmt.Errorf("owner %q: must be user or user:group", s.Owner)
	}
	owner, group, _ := strings.Cut(s.Owner, ":")
	deferred := s.Owner != "" && (owner != "root" || (group != "" && group != "root"))
	if strings.HasPrefix(p, "/home/") || (user != "" && strings.HasPrefix(p, "/home/"+user+"/")) {
		deferred = true
	}
	return writeFile(p, s.Content, s.Permissions, s.Owner, deferred), nil
}

// hostKeyConfig checks that the private key parses and matches the public
// one, and returns cloud-init's ssh_keys for its type.
func hostKeyConfig(privatePEM, public string) (mapping, error) {
	if privatePEM == "" && public == "" {
		return nil, nil
	}
	if privatePEM == "" || public == "" {
		return nil, errors.New("input HostKeyPrivatePEM and HostKeyPublic: set both or neither")
	}
	signer, err := ssh.ParsePrivateKey([]byte(privatePEM))
	if err != nil {
		return nil, fmt.Errorf("input HostKeyPrivatePEM: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(public))
	if err != nil {
		return nil, fmt.Errorf("input HostKeyPublic: %w", err)
	}
	if string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
		return nil, errors.New("input HostKeyPublic: does not match HostKeyPrivatePEM")
	}
	var kind string
	switch t := pub.Type(); {
	case t == ssh.KeyAlgoED25519:
		kind = "ed25519"
	case t == ssh.KeyAlgoRSA:
		kind = "rsa"
	case strings.HasPrefix(t, "ecdsa-sha2-"):
		kind = "ecdsa"
	default:
		return nil, fmt.Errorf("input HostKeyPublic: key type %s is not supported for a host key", t)
	}
	priv := privatePEM
	if !strings.HasSuffix(priv, "\n") {
		priv += "\n"
	}
	return mapping{
		{kind + "_private", priv},
		{kind + "_public", strings.TrimSpace(public)},
	}, nil
}

// DefaultHostname makes a host name from a template name.
func DefaultHostname(name string) string {
	h := slugDrop.ReplaceAllString(strings.ToLower(name), "-")
	h = strings.Trim(h, "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		return "guest"
	}
	return h
}

func checkHostname(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("input Hostname %q: longer than 253 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if !hostLabel.MatchString(label) {
			return fmt.Errorf("input Hostname %q: not a lowercase RFC 1123 host name", h)
		}
	}
	return nil
}

// networkConfig renders network-config. With a MAC address it is an
// explicit version 2 config, matched by MAC and renamed eth0 (the one form
// that every cloud-init renderer honours: netplan, networkd, eni,
// sysconfig, NetworkManager). Without one it holds only comments: NoCloud
// then has no network config and cloud-init applies its fallback, DHCP on
// the first Ethernet interface, under whatever name the image gives it. A
// name glob cannot do that: netplan rejects a glob as the entry's ID, and
// cloud-init's other renderers use the ID as the interface name.
func networkConfig(mac string) ([]byte, error) {
	if mac == "" {
		return []byte("# guestcatalog: no explicit network configuration.\n" +
			"# cloud-init's fallback applies: DHCP on the first Ethernet interface,\n" +
			"# whatever its name and whichever renderer the image uses.\n"), nil
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("input MACAddress %q: not an Ethernet MAC address", mac)
	}
	doc := mapping{
		{"version", 2},
		{"ethernets", mapping{{"eth0", mapping{
			{"match", mapping{{"macaddress", hw.String()}}},
			{"set-name", "eth0"},
			{"dhcp4", true},
		}}}},
	}
	out, err := encodeYAML([]string{"# guestcatalog: DHCP on the NIC with MAC " + hw.String() + "."}, doc)
	if err == nil {
		err = checkRoundTrip(out, doc)
	}
	if err != nil {
		return nil, fmt.Errorf("rendering network-config: %w", err)
	}
	return out, nil
}
