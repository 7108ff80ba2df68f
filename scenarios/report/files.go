package report

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// The files WriteFiles writes, relative to the output folder.
const (
	FileSummary = "summary.txt"
	FileJSON    = "timeline.json"
	FileJUnit   = "junit.xml"
	FileHTML    = "failover.html"
	FileSVG     = "failover.svg"
)

// WriteFiles writes every report into dir: summary.txt, timeline.json,
// junit.xml, failover.html and failover.svg (what vpnlab run leaves). It first adds them to
// r.Artifacts (those not listed yet), so each report lists all files.
func WriteFiles(dir string, r *Run) error {
	files := []struct {
		name, what string
		write      func(io.Writer, *Run) error
	}{
		{FileSummary, "this summary", WriteSummary},
		{FileJSON, "every step, event and flow as JSON", WriteJSON},
		{FileJUnit, "JUnit XML for CI", WriteJUnit},
		{FileHTML, "the picture: tunnel states, BGP path, flow loss over time (open in a browser)", WriteHTML},
		{FileSVG, "the same picture as SVG", WriteSVG},
	}
	for _, f := range files {
		listed := false
		for _, a := range r.Artifacts {
			if filepath.Clean(a.Path) == f.name {
				listed = true
			}
		}
		if !listed {
			r.Artifacts = append(r.Artifacts, Artifact{Name: f.name, Path: f.name, What: f.what})
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		errs = append(errs, writeFile(filepath.Join(dir, f.name), r, f.write))
	}
	return errors.Join(errs...)
}

func writeFile(path string, r *Run, write func(io.Writer, *Run) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(fh, r)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}
