package framework

import (
	"fmt"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// AllowUnpinnedFlag is the CLI flag (and config.EnvAllowUnpinned the
// environment variable) that lets a template whose guest downloads what the
// catalog does not pin run.
const AllowUnpinnedFlag = "--allow-unpinned"

// UnpinnedRefusal is why a template that declares unpinned downloads
// (engine.unpinned) may not run under cfg: each download named, and how to
// allow them. "" when the template declares none or cfg allows them. It
// looks at the template only: nothing is downloaded or booted.
func UnpinnedRefusal(cfg config.Config, t *catalog.Template) string {
	us := t.UnpinnedDownloads()
	if len(us) == 0 || cfg.AllowUnpinned {
		return ""
	}
	whats := make([]string, len(us))
	for i, u := range us {
		whats[i] = catalog.Sanitize(u.What)
	}
	return fmt.Sprintf("the guest downloads %d thing(s) the catalog does not pin (engine.unpinned): %s; %s (env %s=1) runs it anyway ('catalog show %s' says why each is unpinned)",
		len(us), strings.Join(whats, ", "), AllowUnpinnedFlag, config.EnvAllowUnpinned, t.Name)
}

// checkUnpinned applies the run's unpinned-download policy to a template
// before anything is downloaded or booted: the reason to skip it, or ""
// after recording in rep what the guest is allowed to download unpinned.
func (r *Run) checkUnpinned(t *catalog.Template, rep *report.Template) string {
	if reason := UnpinnedRefusal(r.cfg, t); reason != "" {
		return reason
	}
	rep.Unpinned = nil
	for _, u := range t.UnpinnedDownloads() {
		rep.Unpinned = append(rep.Unpinned, report.Unpinned{What: u.What, Reason: u.Reason})
	}
	return ""
}
