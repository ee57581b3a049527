package cloudinit

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// schemaCheck runs cloud-init's own validator on a user-data file. Exit 0
// and "Valid cloud-config" is a pass; cloud-init 22.4 exits 1 and prints
// "Cloud config schema errors: ..." otherwise.
func schemaCheck(t *testing.T, tool string, userData []byte) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "user-data")
	require.NoError(t, os.WriteFile(f, userData, 0o600))
	out, err := exec.Command(tool, "schema", "--config-file", f).CombinedOutput()
	return string(out), err
}

func TestIntegrationCloudInitSchemaFixtures(t *testing.T) {
	tool := requireTool(t, "cloud-init")
	// The validator must be able to fail, or a pass means nothing.
	out, err := schemaCheck(t, tool, []byte("#cloud-config\nruncmd: 3\nssh_genkeytypes: []\n"))
	require.Error(t, err, "cloud-init schema accepted a broken config: %s", out)
	assert.Contains(t, out, "runcmd: 3 is not of type 'array'")

	for _, c := range fixtureCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s, err := Render(c.tpl, c.in)
			require.NoError(t, err)
			out, err := schemaCheck(t, tool, s.UserData)
			require.NoError(t, err, "cloud-init schema: %s", out)
			assert.Contains(t, out, "Valid cloud-config")
		})
	}
}

// TestIntegrationCloudInitSchemaShipped validates the user-data of every
// shipped template, on every arch and image kind, with cloud-init itself.
func TestIntegrationCloudInitSchemaShipped(t *testing.T) {
	tool := requireTool(t, "cloud-init")
	seen := map[string]bool{} // seeds that differ only in their header line
	for _, c := range shippedCases(t) {
		s, err := Render(c.tpl, c.in)
		require.NoError(t, err)
		body := strings.SplitN(string(s.UserData), "\n", 3)[2]
		if seen[body] {
			continue
		}
		seen[body] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := schemaCheck(t, tool, s.UserData)
			require.NoError(t, err, "cloud-init schema: %s", out)
			assert.Contains(t, out, "Valid cloud-config")
		})
	}
}

// TestIntegrationPyYAMLAgrees reads user-data with PyYAML, the parser
// cloud-init uses, and compares with what goccy/go-yaml reads.
func TestIntegrationPyYAMLAgrees(t *testing.T) {
	python := requireTool(t, "python3")
	if err := exec.Command(python, "-c", "import yaml").Run(); err != nil {
		if os.Getenv("GUESTCATALOG_REQUIRE_TOOLS") == "1" {
			t.Fatalf("python3-yaml is required: %v", err)
		}
		t.Skipf("python3 has no yaml module: %v", err)
	}
	var items seq
	for _, s := range trickyStrings {
		items = append(items, s, mapping{{"c", s}})
	}
	tricky, err := encodeYAML([]string{"#cloud-config"}, mapping{{"items", items}})
	require.NoError(t, err)
	docs := map[string][]byte{"tricky-strings": tricky}
	for _, c := range shippedCases(t) {
		s, err := Render(c.tpl, c.in)
		require.NoError(t, err)
		docs[c.name] = s.UserData
	}
	for _, c := range fixtureCases(t) {
		s, err := Render(c.tpl, c.in)
		require.NoError(t, err)
		docs[c.name+"/user-data"] = s.UserData
		docs[c.name+"/meta-data"] = s.MetaData
		docs[c.name+"/network-config"] = s.NetworkConfig
	}
	// One python process reads every document: {name: parsed}.
	const script = `import json, sys, yaml
docs = json.load(sys.stdin)
print(json.dumps({k: yaml.safe_load(v) for k, v in docs.items()}))`
	in := map[string]string{}
	for name, doc := range docs {
		in[name] = string(doc)
	}
	input, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	py, err := cmd.Output()
	require.NoError(t, err, "PyYAML: %s", stderr.String())
	var fromPy map[string]any
	require.NoError(t, json.Unmarshal(py, &fromPy))
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			var fromGo any
			require.NoError(t, yaml.Unmarshal(doc, &fromGo))
			goJSON, err := json.Marshal(fromGo)
			require.NoError(t, err)
			var fromGoJSON any
			require.NoError(t, json.Unmarshal(goJSON, &fromGoJSON))
			assert.Equal(t, fromPy[name], fromGoJSON)
		})
	}
}

// TestIntegrationSeedISOTools reads the image with xorriso and blkid: label
// cidata, exactly the three names (Rock Ridge), and the same bytes.
func TestIntegrationSeedISOTools(t *testing.T) {
	xorriso := requireTool(t, "xorriso")
	blkid := requireTool(t, "blkid")
	s := testSeed(t)
	dir := t.TempDir()
	iso := filepath.Join(dir, "seed.iso")
	require.NoError(t, WriteSeedISO(iso, s))

	out, err := exec.Command(blkid, "-p", "-s", "LABEL", "-s", "TYPE", "-o", "export", iso).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "LABEL=cidata\n")
	assert.Contains(t, string(out), "TYPE=iso9660\n")

	out, err = exec.Command(xorriso, "-indev", iso, "-ls", "/").CombinedOutput()
	require.NoError(t, err, "%s", out)
	names := regexp.MustCompile(`(?m)^'([^']+)'$`).FindAllStringSubmatch(string(out), -1)
	var got []string
	for _, n := range names {
		got = append(got, n[1])
	}
	assert.Equal(t, []string{"meta-data", "network-config", "user-data"}, got, "%s", out)
	assert.Contains(t, string(out), "Volume id    : 'cidata'")

	ex := filepath.Join(dir, "extracted")
	out, err = exec.Command(xorriso, "-osirrox", "on", "-indev", iso, "-extract", "/", ex).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for name, want := range map[string][]byte{FileUserData: s.UserData, FileMetaData: s.MetaData, FileNetworkConfig: s.NetworkConfig} {
		b, err := os.ReadFile(filepath.Join(ex, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, b), "%s differs after extraction", name)
	}

	if isoinfo, err := exec.LookPath("isoinfo"); err == nil {
		out, err := exec.Command(isoinfo, "-d", "-i", iso).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "Volume id: cidata")
		assert.Contains(t, string(out), "Rock Ridge signatures version 1 found")
		assert.Contains(t, string(out), "Joliet with UCS level 3 found")
	}
}

// TestIntegrationNetworkConfigRenderers renders the MAC-pinned
// network-config with cloud-init's own renderers: each one configures
// DHCP on the NIC with that MAC.
func TestIntegrationNetworkConfigRenderers(t *testing.T) {
	tool := requireTool(t, "cloud-init")
	net, err := networkConfig("52:54:00:12:34:56")
	require.NoError(t, err)
	dir := t.TempDir()
	src := filepath.Join(dir, "network-config")
	require.NoError(t, os.WriteFile(src, net, 0o644))
	for _, tc := range []struct {
		distro, kind, file string
		want               []string
	}{
		{"debian", "networkd", "etc/systemd/network/10-cloud-init-eth0.network", []string{"MACAddress=52:54:00:12:34:56", "Name=eth0", "DHCP=ipv4"}},
		{"debian", "eni", "etc/network/interfaces.d/50-cloud-init", []string{"auto eth0", "iface eth0 inet dhcp"}},
		{"alpine", "eni", "etc/network/interfaces", []string{"auto eth0", "iface eth0 inet dhcp"}},
		{"rocky", "sysconfig", "etc/sysconfig/network-scripts/ifcfg-eth0", []string{"BOOTPROTO=dhcp", "HWADDR=52:54:00:12:34:56"}},
		{"fedora", "network-manager", "etc/NetworkManager/system-connections/cloud-init-eth0.nmconnection", []string{"mac-address=52:54:00:12:34:56", "method=auto"}},
		{"ubuntu", "netplan", "etc/netplan/50-cloud-init.yaml", []string{"macaddress: '52:54:00:12:34:56'", "set-name: eth0", "dhcp4: true"}},
	} {
		t.Run(tc.distro+"-"+tc.kind, func(t *testing.T) {
			out := filepath.Join(dir, tc.distro+"-"+tc.kind)
			b, err := exec.Command(tool, "devel", "net-convert", "-p", src, "-k", "yaml", "-d", out, "-D", tc.distro, "-O", tc.kind).CombinedOutput()
			require.NoError(t, err, "%s", b)
			got, err := os.ReadFile(filepath.Join(out, tc.file))
			require.NoError(t, err)
			for _, w := range tc.want {
				assert.Contains(t, string(got), w)
			}
		})
	}
}

// TestIntegrationRunnerPackageCheck runs the runner's package check on this
// Debian host: an installed package passes, a missing one fails the run
// with "failed: packages exit 1" before any step.
func TestIntegrationRunnerPackageCheck(t *testing.T) {
	requireTool(t, "dpkg-query")
	for _, tc := range []struct {
		pkgs   []string
		marker string
	}{
		{[]string{"coreutils", "dpkg=1.0"}, "ok\n"},
		{[]string{"coreutils", "guestcatalog-no-such-package"}, "failed: packages exit 1\n"},
	} {
		root := t.TempDir()
		tpl := &catalog.Template{
			Name:   "debian-13-pkgcheck",
			Distro: &catalog.Distro{Name: "debian", Family: catalog.FamilyDebian},
			User:   &catalog.User{Name: "root"},
			Params: map[string]string{"out": filepath.Join(root, "ran")},
			Provision: []catalog.Step{
				{Mode: catalog.ModePackages, Packages: tc.pkgs},
				{Mode: catalog.ModeSystem, Script: "touch \"$PARAM_out\"\n"},
			},
		}
		_, ud := render(t, tpl, testInput(t, catalog.ArchX8664))
		materialize(t, ud, root)
		out, err := exec.Command("/bin/sh", root+RunnerPath).CombinedOutput()
		marker, rerr := os.ReadFile(root + MarkerPath)
		require.NoError(t, rerr, "%s", out)
		assert.Equal(t, tc.marker, string(marker), "%s", out)
		if tc.marker == "ok\n" {
			assert.NoError(t, err)
			assert.FileExists(t, filepath.Join(root, "ran"))
		} else {
			assert.Error(t, err)
			assert.NoFileExists(t, filepath.Join(root, "ran"))
			assert.True(t, strings.Contains(string(out), "packages not installed: guestcatalog-no-such-package"), "%s", out)
		}
	}
}
