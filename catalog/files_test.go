package catalog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const smallFragment = "apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: engines/small\n"

// loadErrors loads paths alone and returns every error, the directory
// replaced by <dir>.
func loadErrors(t *testing.T, dir string, paths ...string) []string {
	t.Helper()
	c, err := loadWith(context.Background(), loadOptions{paths: paths, oneLayer: true})
	require.NotNil(t, c, "%v", err)
	errs, _ := allProblems(c)
	for i := range errs {
		errs[i] = strings.ReplaceAll(errs[i], dir, "<dir>")
	}
	return errs
}

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if bigEndian {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

func utf32Bytes(s string, bigEndian, bom bool) []byte {
	rs := []rune(s)
	if bom {
		rs = append([]rune{0xFEFF}, rs...)
	}
	var out []byte
	for _, r := range rs {
		if bigEndian {
			out = append(out, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
		} else {
			out = append(out, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
		}
	}
	return out
}

// TestEncodings: a UTF-8 byte-order mark is accepted (the file loads, with
// its positions right); UTF-16 and UTF-32 are named in the error.
func TestEncodings(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	bom := write("bom.yaml", append([]byte{0xEF, 0xBB, 0xBF}, smallFragment+"cpus: 0\n"...))
	assert.Equal(t, []string{"<dir>/bom.yaml:4:7: cpus: must be at least 1, not 0"}, loadErrors(t, dir, bom))

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"utf16le-bom", utf16Bytes(smallFragment, false, true), "UTF-16LE (byte-order mark)"},
		{"utf16be-bom", utf16Bytes(smallFragment, true, true), "UTF-16BE (byte-order mark)"},
		{"utf16le", utf16Bytes(smallFragment, false, false), "UTF-16LE"},
		{"utf16be", utf16Bytes(smallFragment, true, false), "UTF-16BE"},
		{"utf32le-bom", utf32Bytes(smallFragment, false, true), "UTF-32LE (byte-order mark)"},
		{"utf32be-bom", utf32Bytes(smallFragment, true, true), "UTF-32BE (byte-order mark)"},
		{"utf32le", utf32Bytes(smallFragment, false, false), "UTF-32LE"},
		{"utf32be", utf32Bytes(smallFragment, true, false), "UTF-32BE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name+".yaml", tc.data)
			assert.Equal(t, []string{"<dir>/" + tc.name + ".yaml: the file is encoded in " + tc.want + "; a template file must be UTF-8"}, loadErrors(t, dir, p))
		})
	}
	latin1 := write("latin1.yaml", []byte(smallFragment+"description: caf\xe9\n"))
	assert.Equal(t, []string{"<dir>/latin1.yaml:4: not valid UTF-8: a template file must be UTF-8 text"}, loadErrors(t, dir, latin1))
	nul := write("nul.yaml", []byte(smallFragment+"description: a\x00b\n"))
	assert.Equal(t, []string{"<dir>/nul.yaml:4: a NUL byte at column 15: a template file is text"}, loadErrors(t, dir, nul))
}

// TestOnlyRegularFiles: in a directory, a FIFO, a link to /dev/zero and a
// link to a directory are errors naming them, and none is read (a FIFO
// would block forever, /dev/zero would be read until memory runs out).
func TestOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a-good.yaml"), []byte(smallFragment), 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644))
	require.NoError(t, os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.Symlink(dir, filepath.Join(dir, "sub", "loop.yaml")))

	done := make(chan []string)
	go func() { done <- loadErrors(t, dir, dir) }()
	select {
	case errs := <-done:
		assert.Equal(t, []string{
			"<dir>/fifo.yaml: a named pipe (FIFO): only regular files are read",
			"<dir>/sub/loop.yaml: a directory: only regular files are read",
			"<dir>/zero.yaml: a character device: only regular files are read",
		}, errs)
	case <-time.After(10 * time.Second):
		t.Fatal("loading a directory with a FIFO hangs")
	}
	// named directly, too
	assert.Equal(t, []string{"<dir>/fifo.yaml: a named pipe (FIFO): only regular files are read"}, loadErrors(t, dir, filepath.Join(dir, "fifo.yaml")))
}

// TestFileSizeCheckedBeforeReading: a file over the limit is refused from
// its size, unread (a sparse 1 TiB file would take minutes to read).
func TestFileSizeCheckedBeforeReading(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sparse.yaml")
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<40))
	require.NoError(t, f.Close())
	start := time.Now()
	assert.Equal(t, []string{"<dir>/sparse.yaml: the file is 1048576 MiB, over the limit of 1 MiB for a template file"}, loadErrors(t, dir, p))
	assert.Less(t, time.Since(start), time.Second)
}

// TestQuoteAndSanitize: names with control characters never reach a
// terminal raw.
func TestQuoteAndSanitize(t *testing.T) {
	assert.Equal(t, "engines/docker", Quote("engines/docker"))
	assert.Equal(t, "gruß 🚀", Quote("gruß 🚀"))
	assert.Equal(t, `"a\r\x1b[2KPASS"`, Quote("a\r\x1b[2KPASS"))
	assert.Equal(t, `"x\u202ey"`, Quote("x\u202ey"))
	assert.Equal(t, `"\xff"`, Quote("\xff"))
	assert.Equal(t, `FAIL a\r\x1b[2KPASS debian-13-docker`, Sanitize("FAIL a\r\x1b[2KPASS debian-13-docker"))
	assert.Equal(t, `one\ntwo \xff`, Sanitize("one\ntwo \xff"))
	p := Problem{Pos: Position{File: "t\x1b.yaml", Line: 1}, Message: "bad \r"}
	assert.Equal(t, `t\x1b.yaml:1: bad \r`, p.Error())
}

// TestSeedSizeBound: a template whose seed would be too large (the alias
// fan-out of issue 10, built in Go here) is refused by Validate.
func TestSeedSizeBound(t *testing.T) {
	tpl := &Template{Kind: KindFragment, Name: "engines/fanout"}
	big := strings.Repeat("x", 1<<20)
	for range 10 {
		tpl.Provision = append(tpl.Provision, Step{Mode: ModeSystem, Script: big})
	}
	ps := Problems{}
	c := &checker{loc: func(string) Position { return Position{} }}
	c.seedSize(tpl)
	ps = append(ps, c.errs...)
	assert.Equal(t, "provision: the cloud-init seed would be about 10.0 MiB, over the limit of 8 MiB (scripts, data files, and the env repeated in each boot step)", ps.Error())

	// the env is repeated in each boot step
	tpl.Provision = nil
	tpl.Env = map[string]string{"BIG": strings.Repeat("v", 100<<10)}
	for range 30 {
		tpl.Provision = append(tpl.Provision, Step{Mode: ModeBoot, Script: "true"})
	}
	assert.Greater(t, SeedBytes(tpl), int64(MaxSeedBytes))
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:s3cret@example.org/a.qcow2": "https://<redacted>@example.org/a.qcow2",
		"https://token@example.org":               "https://<redacted>@example.org",
		"ftp://u:p@h/x":                           "ftp://<redacted>@h/x",
		"https://u:p%zz@h/x":                      "https://<redacted>@h/x", // does not parse
		"https://example.org/a@b":                 "https://example.org/a@b",
		"no url":                                  "no url",
	} {
		assert.Equal(t, want, RedactURL(in), in)
	}
}
