package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// A rule says that the packages at From (that path and everything below it) never import any
// package at the paths in Never, directly or through others. Paths are relative to the module.
// Rules hold for the packages' own code; test files may import more (a transport's tests start
// a server, the suites run over netem).
type rule struct {
	From  string
	Never []string
	Why   string
}

// rules is the architecture (README, "How it is built"). The first four are issue 13's item 7
// (transports' also holds an edge item 5 removed: no server); the others hold the edges item 5
// removed.
var rules = []rule{
	{"chat", []string{"transports", "netem", "lab", "results", "web"},
		"the chat core sees sessions it can write to and close, never HTTP, QUIC or the network"},
	{"transports", []string{"lab", "results", "netem", "server"},
		"a transport is a handler and a client; the lab drives it, the network is its caller's Dial, and server/ (which imports every transport) is built by the tests that need one"},
	{"netem", []string{"chat", "transports", "lab"},
		"the emulated network carries packets and knows nothing of what they say"},
	{"results", []string{"lab", "netem", "transports"},
		"results reads and writes result files; the lab fills them"},
	{"web", []string{"server", "transports", "netem", "lab"},
		"web is the page and its handlers; the demo's network and server are lab's"},
	{"server", []string{"lab", "results", "netem", "scenarios", "web"},
		"server assembles the hub and the transports; the page is handed to it as an http.Handler"},
	{"scenarios", []string{"server", "lab", "results", "web"},
		"a scenario says what to run; the lab runs it"},
}

// cmdDir holds the commands: nothing outside it imports it, tests included.
const cmdDir = "cmd"

// TestImportRules checks every rule against `go list -deps` of the whole module and, for every
// package, that nothing outside cmd/ imports a package in cmd/.
func TestImportRules(t *testing.T) {
	module, pkgs := listModule(t)
	g := importGraph(pkgs)
	for _, r := range rules {
		from := under(module, r.From)
		n := 0
		for p := range g {
			if from(p) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("rule for %s: no package there (was it moved? update the rule and README)", r.From)
		}
		for _, v := range r.violations(module, g) {
			t.Errorf("%s (%s)", v, r.Why)
		}
	}
	for _, v := range cmdViolations(module, pkgs) {
		t.Error(v)
	}
}

// pkg is one entry of `go list -json -test -deps`.
type pkg struct {
	ImportPath string
	ForTest    string
	Imports    []string
	Error      *struct{ Err string }
}

// listModule lists every package of the module with its dependencies, test variants included.
// `go test` puts its own go first on PATH.
func listModule(t *testing.T) (module string, pkgs []pkg) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v%s", err, stderrOf(err))
	}
	module = strings.TrimSpace(string(out))
	out, err = exec.Command("go", "list", "-e", "-test", "-deps", "-json=ImportPath,ForTest,Imports,Error", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list -deps %s/...: %v%s", module, err, stderrOf(err))
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("reading go list's output: %v", err)
		}
		if p.Error != nil && strings.HasPrefix(p.ImportPath, module) {
			t.Errorf("go list cannot read %s (its imports are unknown): %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	return module, pkgs
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return "\n" + string(ee.Stderr)
	}
	return ""
}

// importGraph maps each package (its own code: no test variants) to what it imports.
func importGraph(pkgs []pkg) map[string][]string {
	g := map[string][]string{}
	for _, p := range pkgs {
		if p.ForTest != "" || strings.Contains(p.ImportPath, " [") || strings.HasSuffix(p.ImportPath, ".test") {
			continue
		}
		g[p.ImportPath] = p.Imports
	}
	return g
}

// under returns whether a package path is rel (relative to module) or below it.
func under(module, rel string) func(string) bool {
	root := module + "/" + rel
	return func(p string) bool { return p == root || strings.HasPrefix(p, root+"/") }
}

// violations lists, for every package at r.From, each package at r.Never that it reaches,
// with the shortest chain of imports that brings it in.
func (r rule) violations(module string, g map[string][]string) []string {
	from := under(module, r.From)
	var never []func(string) bool
	for _, n := range r.Never {
		never = append(never, under(module, n))
	}
	forbidden := func(p string) bool { return slices.ContainsFunc(never, func(f func(string) bool) bool { return f(p) }) }
	short := func(p string) string { return strings.TrimPrefix(p, module+"/") }
	var out []string
	for _, start := range sortedKeys(g) {
		if !from(start) {
			continue
		}
		// Breadth first through the module's packages (nothing outside it imports them back).
		parent := map[string]string{start: ""}
		queue := []string{start}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, imp := range g[p] {
				if _, seen := parent[imp]; seen || !strings.HasPrefix(imp, module+"/") {
					continue
				}
				parent[imp] = p
				if forbidden(imp) {
					chain := []string{short(imp)}
					for q := p; q != ""; q = parent[q] {
						chain = append(chain, short(q))
					}
					slices.Reverse(chain)
					out = append(out, fmt.Sprintf("%s imports %s: %s", short(start), short(imp), strings.Join(chain, " -> ")))
					continue // what the forbidden package imports is its own business
				}
				queue = append(queue, imp)
			}
		}
	}
	return out
}

// cmdViolations lists every import of a package in cmd/ by a package outside it, in code or
// tests.
func cmdViolations(module string, pkgs []pkg) []string {
	inCmd := under(module, cmdDir)
	base := func(p string) string {
		p, _, _ = strings.Cut(p, " [")
		return strings.TrimSuffix(p, ".test")
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range pkgs {
		b := base(p.ImportPath)
		if b == "" || inCmd(b) || !strings.HasPrefix(b, module+"/") {
			continue
		}
		for _, imp := range p.Imports {
			if i := base(imp); inCmd(i) && !seen[b+" "+i] {
				seen[b+" "+i] = true
				out = append(out, fmt.Sprintf("%s imports %s: nothing imports cmd/ (move what both need into a package)",
					strings.TrimPrefix(b, module+"/"), strings.TrimPrefix(i, module+"/")))
			}
		}
	}
	return out
}

func sortedKeys(g map[string][]string) []string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
