package sshx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// TransferOption modifies Upload and Download.
type TransferOption func(*transfer)

type transfer struct{ sudo bool }

// uploadScript writes stdin to a temporary file beside the target, sets the
// mode, then renames it into place: a reader never sees half a file.
const uploadScript = `set -e
umask 077
dir=$(dirname -- "$1")
mkdir -p -- "$dir"
tmp="$1.upload.$$"
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod "$2" "$tmp"
mv -f -- "$tmp" "$1"
trap - EXIT`

// Upload writes r to remotePath in the guest with mode, through `cat` over
// an SSH session (no sftp subsystem needed). Parent directories are created.
func (c *Client) Upload(ctx context.Context, r io.Reader, remotePath string, mode fs.FileMode, opts ...TransferOption) error {
	var t transfer
	for _, o := range opts {
		o(&t)
	}
	cmd := exec.Cmd{
		Args:  []string{"sh", "-c", uploadScript, "upload", remotePath, fmt.Sprintf("%04o", mode.Perm())},
		Stdin: r,
		Sudo:  t.sudo,
	}
	if _, err := c.Run(ctx, cmd); err != nil {
		return fmt.Errorf("uploading %s: %w", remotePath, err)
	}
	return nil
}

// UploadBytes is Upload from a byte slice.
func (c *Client) UploadBytes(ctx context.Context, data []byte, remotePath string, mode fs.FileMode, opts ...TransferOption) error {
	return c.Upload(ctx, bytes.NewReader(data), remotePath, mode, opts...)
}

// Download streams remotePath from the guest into w (`cat` over a session).
func (c *Client) Download(ctx context.Context, remotePath string, w io.Writer, opts ...TransferOption) error {
	var t transfer
	for _, o := range opts {
		o(&t)
	}
	line, err := exec.Cmd{Args: []string{"cat", "--", remotePath}, Sudo: t.sudo}.ShellLine()
	if err != nil {
		return err
	}
	var stderr exec.Buffer
	if _, err := c.session(ctx, line, nil, w, &stderr); err != nil {
		msg := exec.TailLines(stderr.Bytes(), 3)
		if msg != "" {
			return fmt.Errorf("downloading %s: %s: %w", remotePath, msg, err)
		}
		return fmt.Errorf("downloading %s: %w", remotePath, err)
	}
	return nil
}

// ReadFile returns the content of remotePath in the guest.
func (c *Client) ReadFile(ctx context.Context, remotePath string, opts ...TransferOption) ([]byte, error) {
	var b bytes.Buffer
	if err := c.Download(ctx, remotePath, &b, opts...); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
