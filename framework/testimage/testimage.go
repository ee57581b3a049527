package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// Applets() linked into the image's /bin; enough for the specs (a shell, an
// HTTP server, a client, and the usual file tools).
func Applets() []string {
	return []string{
		"sh", "ash", "cat", "echo", "env", "ls", "mkdir", "rm", "sleep", "hostname",
		"id", "wget", "nc", "httpd", "ps", "grep", "true", "false", "test", "touch",
		"uname", "head", "tail", "sed", "date", "ping", "ip", "ifconfig", "nslookup",
		"whoami", "mount", "df", "wc", "tee", "printf", "kill", "chmod", "cp", "mv",
	}
}

// epoch() is the fixed timestamp of every entry, so that the same busybox
// gives byte-identical archives (and digests).
func epoch() time.Time {
	return time.Unix(1700000000, 0).UTC()
}

// RootfsTar writes a busybox root filesystem as an uncompressed tar:
// /bin/busybox, /bin/<applet> symlinks, /etc/passwd, /etc/group, /tmp,
// /proc, /sys, /dev, /var/www/index.html ("hello from busybox").
func RootfsTar(w io.Writer, busyboxPath string) error {
	if busyboxPath == "" {
		busyboxPath = DefaultBusybox
	}
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("reading busybox (Debian package busybox-static): %w", err)
	}
	if !isStaticELF(bin) {
		return fmt.Errorf("%s is not a statically linked ELF binary; install Debian's busybox-static", busyboxPath)
	}
	tw := tar.NewWriter(w)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: epoch(), Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch(), Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin", 0o755}, {"etc", 0o755}, {"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"tmp", 0o1777}, {"root", 0o700}, {"var", 0o755}, {"var/www", 0o755}} {
		if err := dir(d.name, d.mode); err != nil {
			return err
		}
	}
	if err := file("bin/busybox", 0o755, bin); err != nil {
		return err
	}
	for _, a := range Applets() {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: epoch(), Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	files := []struct {
		name, content string
	}{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
		{"var/www/index.html", "hello from busybox\n"},
	}
	for _, f := range files {
		if err := file(f.name, 0o644, []byte(f.content)); err != nil {
			return err
		}
	}
	return tw.Close()
}

func isStaticELF(b []byte) bool {
	if len(b) < 4 || string(b[:4]) != "\x7fELF" {
		return false
	}
	// A dynamically linked binary names its interpreter (PT_INTERP).
	return !bytes.Contains(b, []byte("/lib64/ld-linux")) && !bytes.Contains(b, []byte("/lib/ld-linux"))
}

// OCIArchive writes an OCI image layout as a tar stream (what `ctr image
// import`, `docker load` and `podman load` accept) holding one image named
// ref (e.g. "localhost/busybox:latest") whose single layer is rootfs (an
// uncompressed tar such as RootfsTar writes). cmd is the image's default
// command.
func OCIArchive(w io.Writer, ref string, rootfs []byte, cmd []string) error {
	return OCIArchiveFor(w, ref, rootfs, cmd, runtime.GOARCH)
}

// OCIArchiveFor is OCIArchive for an image of another architecture (Go's
// and OCI's name: amd64, arm64), whose rootfs holds that arch's busybox
// (FetchBusybox).
func OCIArchiveFor(w io.Writer, ref string, rootfs []byte, cmd []string, goarch string) error {
	if ref == "" || !strings.Contains(ref, ":") {
		return errors.New("OCIArchive: ref must be name:tag")
	}
	var layer bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&layer, gzip.BestSpeed)
	if _, err := gz.Write(rootfs); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	arch := goarch
	config := map[string]any{
		"created":      epoch().Format(time.RFC3339),
		"architecture": arch,
		"os":           "linux",
		"config":       map[string]any{"Cmd": cmd, "Env": []string{"PATH=/bin"}, "WorkingDir": "/"},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest(rootfs)}},
		"history":      []map[string]any{{"created": epoch().Format(time.RFC3339), "created_by": "guestcatalog testimage (busybox-static)"}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return err
	}
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor("application/vnd.oci.image.config.v1+json", configJSON),
		"layers":        []any{descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer.Bytes())},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	md := descriptor("application/vnd.oci.image.manifest.v1+json", manifestJSON)
	md["annotations"] = map[string]string{
		"org.opencontainers.image.ref.name": ref[strings.LastIndex(ref, ":")+1:],
		"io.containerd.image.name":          ref,
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{md},
	})
	if err != nil {
		return err
	}
	// docker load (before v25) and podman read manifest.json; include it too.
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   "blobs/sha256/" + hexOf(configJSON),
		"RepoTags": []string{ref},
		"Layers":   []string{"blobs/sha256/" + hexOf(layer.Bytes())},
	}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch()}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch()}); err != nil {
			return err
		}
	}
	for _, e := range []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"manifest.json", dockerManifest},
		{"blobs/sha256/" + hexOf(configJSON), configJSON},
		{"blobs/sha256/" + hexOf(manifestJSON), manifestJSON},
		{"blobs/sha256/" + hexOf(layer.Bytes()), layer.Bytes()},
	} {
		if err := put(e.name, e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func hexOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func digest(b []byte) string { return "sha256:" + hexOf(b) }

func descriptor(mediaType string, b []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
}
