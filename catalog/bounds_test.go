package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHostileFixtures pins the messages for the attacks of issue 10 that a
// template file can carry; each fixture validated on main before. They
// live in testdata/hostile, apart from testdata/invalid-*.yaml, which the
// schema tests compare with the JSON Schema: most of these rules (bounds
// across fields, control characters, reserved names) are beyond it.
func TestHostileFixtures(t *testing.T) {
	tests := []struct {
		file string
		errs []string
	}{{
		file: "hostile/invalid-bounds.yaml",
		errs: []string{
			"testdata/hostile/invalid-bounds.yaml:24:7: name: must be a clean relative name (no empty, . or .. segments, no leading /), not \"engines/../../../etc/passwd\"",
			"testdata/hostile/invalid-bounds.yaml:25:8: base[0]: must be a clean relative name (no empty, . or .. segments, no leading /), not \"images//x\"",
			"testdata/hostile/invalid-bounds.yaml:25:19: base[1]: must be a clean relative name (no empty, . or .. segments, no leading /), not \"./a\"",
			"testdata/hostile/invalid-bounds.yaml:25:8: base[0]: unknown base \"images//x\"",
			"testdata/hostile/invalid-bounds.yaml:25:19: base[1]: unknown base \"./a\"",
			"testdata/hostile/invalid-bounds.yaml:4:7: cpus: must be at most 512, not 100000",
			"testdata/hostile/invalid-bounds.yaml:5:9: memory: must be at most 1TiB, not 65536TiB",
			"testdata/hostile/invalid-bounds.yaml:6:7: disk: must be at most 16TiB, not 999999T",
			"testdata/hostile/invalid-bounds.yaml:9:15: images[0].firmware: must be uefi (or unset) on aarch64, which has no BIOS",
			"testdata/hostile/invalid-bounds.yaml:10:15: images[0].location: must not hold credentials (user:password@), not \"https://<redacted>@example.org/a.qcow2\": the URL is printed and stored",
			"testdata/hostile/invalid-bounds.yaml:13:15: images[1].location: must name a host, not \"https://:8080/empty-host.qcow2\"",
			"testdata/hostile/invalid-bounds.yaml:16:15: images[2].location: must have a port from 1 to 65535, not \"https://example.org:99999/port.qcow2\"",
			"testdata/hostile/invalid-bounds.yaml:19:15: images[3].location: must be an http(s) URL, not \"ftp://<redacted>@example.org/x\"",
		},
	}, {
		file: "hostile/invalid-control-chars.yaml",
		errs: []string{
			"testdata/hostile/invalid-control-chars.yaml:4:14: description: must not contain the control character \\x1b (line 1)",
			"testdata/hostile/invalid-control-chars.yaml:6:10: user.shell: must be a path without spaces or control characters, not \"/bin/bash\\n\"",
			"testdata/hostile/invalid-control-chars.yaml:9:18: provision[0].description: must not contain a carriage return (\\r)",
			"testdata/hostile/invalid-control-chars.yaml:10:13: provision[0].script: must not contain a carriage return (\\r) (line 1): scripts run on Linux; save the file with LF line endings",
			"testdata/hostile/invalid-control-chars.yaml:12:13: provision[1].script: must not contain a NUL byte (line 2)",
			"testdata/hostile/invalid-control-chars.yaml:14:11: provision[2].path: must not contain a newline (\\n), not \"/etc/x\\ny\"",
			"testdata/hostile/invalid-control-chars.yaml:18:13: probes[0].script: must not contain the control character \\x1b (line 1)",
			"testdata/hostile/invalid-control-chars.yaml:20:8: params.nul: must not contain a NUL byte (no environment variable can hold one)",
			"testdata/hostile/invalid-control-chars.yaml:22:15: mounts[0].location: must not contain a tab (\\t), not \"/srv/\\tdata\"",
			"testdata/hostile/invalid-control-chars.yaml:23:17: mounts[0].mountPoint: must not contain the control character \\x1b, not \"/mnt/\\x1b\"",
			"testdata/hostile/invalid-control-chars.yaml:25:11: checks[0].name: must not contain a carriage return (\\r)",
			"testdata/hostile/invalid-control-chars.yaml:26:10: checks[0].run: must not contain a carriage return (\\r) (line 1): scripts run on Linux; save the file with LF line endings",
		},
	}, {
		file: "hostile/invalid-reserved.yaml",
		errs: []string{
			"testdata/hostile/invalid-reserved.yaml:5:9: env.PATH: PATH is reserved: it decides which programs the runner and every step run",
			"testdata/hostile/invalid-reserved.yaml:6:8: env.LOG: LOG is reserved: the provisioning runner sets it",
			"testdata/hostile/invalid-reserved.yaml:7:10: env.STEPS: STEPS is reserved: the provisioning runner sets it",
			"testdata/hostile/invalid-reserved.yaml:8:11: env.MARKER: MARKER is reserved: the provisioning runner sets it",
			"testdata/hostile/invalid-reserved.yaml:9:15: env.LD_PRELOAD: LD_PRELOAD is reserved: the dynamic linker reads it in every program",
			"testdata/hostile/invalid-reserved.yaml:10:8: env.IFS: IFS is reserved: it changes how every shell splits words",
			"testdata/hostile/invalid-reserved.yaml:11:13: env.BASH_ENV: BASH_ENV is reserved: a shell sources the file it names",
			"testdata/hostile/invalid-reserved.yaml:12:8: env.ENV: ENV is reserved: a shell sources the file it names",
			"testdata/hostile/invalid-reserved.yaml:13:14: env.SHELLOPTS: SHELLOPTS is reserved: it changes how every shell of the runner behaves",
			"testdata/hostile/invalid-reserved.yaml:14:9: env.HOME: HOME is reserved: the guest sets it for each user and shell",
			"testdata/hostile/invalid-reserved.yaml:15:22: env.GUESTCATALOG_USER: GUESTCATALOG_USER is reserved: guestcatalog sets it",
			"testdata/hostile/invalid-reserved.yaml:19:11: provision[0].path: \"/var/lib/guestcatalog/provisioned\" is written by guestcatalog (under /var/lib/guestcatalog, /etc/guestcatalog or /var/log/guestcatalog-provision.log): a template may not write it",
			"testdata/hostile/invalid-reserved.yaml:22:11: provision[1].path: \"/etc/guestcatalog/env\" is written by guestcatalog (under /var/lib/guestcatalog, /etc/guestcatalog or /var/log/guestcatalog-provision.log): a template may not write it",
			"testdata/hostile/invalid-reserved.yaml:25:11: provision[2].path: \"/var/lib/guestcatalog/provision/run.sh\" is written by guestcatalog (under /var/lib/guestcatalog, /etc/guestcatalog or /var/log/guestcatalog-provision.log): a template may not write it",
			"testdata/hostile/invalid-reserved.yaml:28:11: provision[3].path: \"/var/log/guestcatalog-provision.log\" is written by guestcatalog (under /var/lib/guestcatalog, /etc/guestcatalog or /var/log/guestcatalog-provision.log): a template may not write it",
		},
	}, {
		file: "hostile/invalid-cycle-escape.yaml",
		errs: []string{
			"testdata/hostile/invalid-cycle-escape.yaml:3:7: name: must match ^[a-z0-9][a-z0-9._/-]*$, not \"engines/a\\r\\x1b[2KPASS debian-13-docker\"",
			"testdata/hostile/invalid-cycle-escape.yaml:9:8: base[0]: cycle in base: \"engines/a\\r\\x1b[2KPASS debian-13-docker\" -> engines/b -> \"engines/a\\r\\x1b[2KPASS debian-13-docker\"",
			"testdata/hostile/invalid-cycle-escape.yaml:3:7: name: must match ^[a-z0-9][a-z0-9._/-]*$, not \"engines/a\\r\\x1b[2KPASS debian-13-docker\"",
			"testdata/hostile/invalid-cycle-escape.yaml:4:8: base[0]: cycle in base: engines/b -> \"engines/a\\r\\x1b[2KPASS debian-13-docker\" -> engines/b",
		},
	}, {
		file: "hostile/invalid-type-and-range.yaml",
		errs: []string{
			"testdata/hostile/invalid-type-and-range.yaml:4:7: cpus: must be an integer, not a string",
			"testdata/hostile/invalid-type-and-range.yaml:5:9: memory: must be at least 256MiB, not 64MiB",
			"testdata/hostile/invalid-type-and-range.yaml:6:7: disk: must be at most 16TiB, not 999999T",
			"testdata/hostile/invalid-type-and-range.yaml:8:9: user.sudo: must be true or false, not a string",
			"testdata/hostile/invalid-type-and-range.yaml:9:9: user.name: must be a user name (^[a-z_][a-z0-9_-]*$, at most 32 characters), not \"Root\"",
			"testdata/hostile/invalid-type-and-range.yaml:12:11: provision[0].path: must be a clean absolute path, not \"relative\"",
			"testdata/hostile/invalid-type-and-range.yaml:14:18: provision[0].permissions: must be a string, not an integer (quote it: \"0644\")",
			"testdata/hostile/invalid-type-and-range.yaml:15:11: provision[1].mode: must be one of system, user, boot, data, packages, not \"sideways\"",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			errs, _ := allProblems(loadFixture(t, tt.file))
			assert.Equal(t, tt.errs, errs)
		})
	}
}
