package results

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// WriteDir writes everything a run produces into dir (created if missing): results.json,
// results.csv, every plot as NAME.png and NAME.svg, report.html and report.md. It returns the
// paths written, report.html first.
func WriteDir(dir string, f *File) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	figs, err := Plots(f)
	if err != nil {
		return nil, err
	}
	var written []string
	put := func(name string, write func(*bytes.Buffer) error) error {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			return fmt.Errorf("results: %s: %w", name, err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("results: %w", err)
		}
		written = append(written, p)
		return nil
	}
	steps := []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"report.html", func(b *bytes.Buffer) error { return WriteReportHTML(b, f, figs) }},
		{"report.md", func(b *bytes.Buffer) error { return WriteReportMD(b, f, figs) }},
		{"results.json", func(b *bytes.Buffer) error { return WriteJSON(b, f) }},
		{"results.csv", func(b *bytes.Buffer) error { return WriteCSV(b, f) }},
	}
	for _, fig := range figs {
		steps = append(steps,
			struct {
				name  string
				write func(*bytes.Buffer) error
			}{fig.Name + ".png", func(b *bytes.Buffer) error { _, err := b.Write(fig.PNG); return err }},
			struct {
				name  string
				write func(*bytes.Buffer) error
			}{fig.Name + ".svg", func(b *bytes.Buffer) error { _, err := b.Write(fig.SVG); return err }})
	}
	for _, s := range steps {
		if err := put(s.name, s.write); err != nil {
			return written, err
		}
	}
	return written, nil
}
