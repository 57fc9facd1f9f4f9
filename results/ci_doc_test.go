package results_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// docs/CI.md's workflow must stay valid YAML and run the commands this package backs.
func TestCIDocWorkflow(t *testing.T) {
	doc, err := os.ReadFile("../docs/CI.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)\n```\n").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/CI.md has no ```yaml block")
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Name string
				Run  string
				Uses string
			}
		}
	}
	if err := yaml.Unmarshal(m[1], &wf); err != nil {
		t.Fatalf("workflow is not YAML: %v", err)
	}
	var runs, uses []string
	for _, j := range wf.Jobs {
		for _, s := range j.Steps {
			runs = append(runs, s.Run)
			uses = append(uses, s.Uses)
		}
	}
	all := strings.Join(runs, "\n")
	// The workflow gates on what make bench-quick gates on.
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	gate := regexp.MustCompile(`(?m)^QUICK_GATE \?= (.+)$`).FindSubmatch(mk)
	if gate == nil {
		t.Fatal("the Makefile has no QUICK_GATE ?= line")
	}
	for _, want := range []string{
		"lab run scenarios/quick.yaml --out out/ci",
		"lab compare results/baseline/quick.json out/ci/results.json",
		string(gate[1]),
		"lab history --metric",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("workflow does not run %q", want)
		}
	}
	for _, want := range []string{"actions/upload-artifact@v4", "actions/cache/restore@v4", "actions/cache/save@v4"} {
		if !strings.Contains(strings.Join(uses, "\n"), want) {
			t.Errorf("workflow does not use %s", want)
		}
	}
}
