// Package fsutil holds the file-system helpers the packages share.
package fsutil
