package catalog

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// loader reads template files under limits, and stops when ctx ends.
type loader struct {
	ctx  context.Context
	lim  Limits
	docs int // documents loaded so far, against lim.DocumentsTotal
}

func newLoader(ctx context.Context, lim Limits) *loader {
	return &loader{ctx: ctx, lim: lim.orDefault()}
}

// fileKind names what a non-regular file is, for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

// readFile reads one template file: only a regular file (or a symbolic link
// to one), never larger than lim.FileBytes. The size is checked before the
// file is read (stat), and again while reading (the file may grow). The file
// is opened non-blocking and checked again on the descriptor, so a FIFO put
// in its place after the stat cannot hang the load.
func (l *loader) readFile(p string) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if err := l.checkRegular(st); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := l.checkRegular(st); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, l.lim.FileBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > l.lim.FileBytes {
		return nil, fmt.Errorf("the file grew over the limit of %s for a template file while it was read", formatBytes(l.lim.FileBytes))
	}
	return data, nil
}

func (l *loader) checkRegular(st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: only regular files are read", fileKind(st.Mode()))
	}
	if st.Size() > l.lim.FileBytes {
		return fmt.Errorf("the file is %s, over the limit of %s for a template file", formatBytes(st.Size()), formatBytes(l.lim.FileBytes))
	}
	return nil
}

// loadFile loads the documents of one file: only a regular file (a
// directory, or a link named *.yaml to one, is an error here and is not
// followed; so is a FIFO or a device, never opened for reading).
func (l *loader) loadFile(p string) []*document {
	if err := l.ctx.Err(); err != nil {
		return nil
	}
	data, err := l.readFile(p)
	if err != nil {
		return []*document{fileError(p, err)}
	}
	return l.parseFile(p, data, 1)
}
