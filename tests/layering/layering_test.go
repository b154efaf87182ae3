// Package layering checks that imports flow downward (issue 12): client
// libraries depend on wire packages, never on the services in ringd; the
// ring and the services never depend on the daemon's TOML schema (config);
// the pure cores import no I/O, logging or IPC. It reads the import graph
// with `go list -deps` (non-test code only: tests may build a daemon).
package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/build"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// serverPrefixes are ringd's side: a client library must not depend on
// them. A package matches a prefix when it is the prefix or below it; the
// wire packages below a service are the shared format and allowed.
var serverPrefixes = []string{
	"ringmaster/votequorum",
	"ringmaster/confdb",
	"ringmaster/cpg",
	"ringmaster/config",
	"ringmaster/totem/exec",
	"ringmaster/reconfig",
}

// pendingClientDeps are client dependencies on a server package that are
// known and still to be removed. The test fails when one of them is gone,
// so the list shrinks to empty (it is empty: keep it so).
var pendingClientDeps = map[string][]string{}

// pendingConfigImports are ring and service packages that still depend on
// config; each takes its own option struct with an adapter in
// internal/daemon once it is done. The test fails when one of them no
// longer depends on config, so the list shrinks to empty.
var pendingConfigImports = []string{}

// pureCores are the protocol cores: inputs and outputs are values, so they
// import no sockets, files, logging, IPC, executive or configuration.
var pureCores = []string{
	"ringmaster/votequorum/calc",
	"ringmaster/confdb/store",
	"ringmaster/crm/pengine",
	"ringmaster/totem/srp",
	"ringmaster/totem/link",
	"ringmaster/cpg/groups",
	"ringmaster/crm/controld",
	"ringmaster/reconfig",
}

// impure are the imports a pure core must not have (directly).
var impure = []string{"os", "net", "go.uber.org/zap", "ringmaster/ipc", "ringmaster/config", "ringmaster/totem/exec"}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	DepOnly    bool
	Error      *struct{ Err string }
}

// goList runs `go list -deps` on the patterns and returns the packages the
// patterns match (with their Imports and Deps).
//
// The test also reads the directory and source files of every ringmaster
// package in the graph: go test caches a result by the files the test
// process opened, and go list's reads are another process's, so without
// this a changed import would be answered from the cache.
func goList(t *testing.T, patterns ...string) map[string]*pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		// `go test` puts its own go on PATH; without one, ask the
		// toolchain that built this test.
		goBin = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	cmd := exec.Command(goBin, append([]string{"list", "-e", "-deps", "-json=ImportPath,Dir,GoFiles,Imports,Deps,DepOnly,Error"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", patterns, err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := &pkg{}
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if under(p.ImportPath, "ringmaster") {
			readSources(t, p)
		}
		if !p.DepOnly {
			pkgs[p.ImportPath] = p
		}
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v: no packages", patterns)
	}
	return pkgs
}

// readSources opens a package's directory and source files, so that the
// test cache knows the result depends on them (see goList).
func readSources(t *testing.T, p *pkg) {
	t.Helper()
	if _, err := os.ReadDir(p.Dir); err != nil {
		t.Fatalf("%s: %v", p.ImportPath, err)
	}
	for _, f := range p.GoFiles {
		if _, err := os.ReadFile(filepath.Join(p.Dir, f)); err != nil {
			t.Fatalf("%s: %v", p.ImportPath, err)
		}
	}
}

func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func isWire(path string) bool {
	return strings.HasSuffix(path, "/wire") || strings.Contains(path, "/wire/")
}

// TestClientsDependOnWireOnly: no package under clients/ depends on a
// service or on the executive, only on their wire packages (and ipc, the
// framing every client speaks).
func TestClientsDependOnWireOnly(t *testing.T) {
	pkgs := goList(t, "ringmaster/clients/...")
	for _, p := range sortedPkgs(pkgs) {
		var bad []string
		for _, d := range p.Deps {
			for _, s := range serverPrefixes {
				if under(d, s) && !isWire(d) {
					bad = append(bad, d)
				}
			}
		}
		pending := pendingClientDeps[p.ImportPath]
		for _, d := range bad {
			if !slices.Contains(pending, d) {
				t.Errorf("%s depends on the server package %s: use its wire package (`go list -deps %s`)", p.ImportPath, d, p.ImportPath)
			}
		}
		for _, d := range pending {
			if !slices.Contains(bad, d) {
				t.Errorf("%s no longer depends on %s: remove it from pendingClientDeps", p.ImportPath, d)
			}
		}
	}
	for c := range pendingClientDeps {
		if pkgs[c] == nil {
			t.Errorf("pendingClientDeps names %s, which is not a package under clients/", c)
		}
	}
}

// TestServicesDoNotImportConfig: the ring and the services take their own
// option structs; config (corosync.toml) is translated by internal/daemon.
func TestServicesDoNotImportConfig(t *testing.T) {
	pkgs := goList(t, "ringmaster/totem/...", "ringmaster/votequorum/...", "ringmaster/confdb/...", "ringmaster/cpg/...")
	for _, p := range sortedPkgs(pkgs) {
		uses := slices.ContainsFunc(p.Deps, func(d string) bool { return under(d, "ringmaster/config") })
		pending := slices.Contains(pendingConfigImports, p.ImportPath)
		switch {
		case uses && !pending:
			t.Errorf("%s depends on ringmaster/config: give it an option struct and build it in internal/daemon (services_config.go)", p.ImportPath)
		case !uses && pending:
			t.Errorf("%s no longer depends on ringmaster/config: remove it from pendingConfigImports", p.ImportPath)
		}
	}
	for _, p := range pendingConfigImports {
		if pkgs[p] == nil {
			t.Errorf("pendingConfigImports names %s, which is not a ring or service package", p)
		}
	}
	if len(pendingConfigImports) > 0 {
		t.Logf("still importing config: %s", strings.Join(pendingConfigImports, ", "))
	}
}

// TestPureCores: the cores import no I/O, logging or IPC (time and
// randomness are inputs; the drivers own clocks, sockets and files).
func TestPureCores(t *testing.T) {
	pkgs := goList(t, pureCores...)
	for _, c := range pureCores {
		p := pkgs[c]
		if p == nil {
			t.Errorf("%s: not found", c)
			continue
		}
		for _, imp := range p.Imports {
			if slices.Contains(impure, imp) {
				t.Errorf("%s imports %s: a pure core takes values, its driver does the I/O", c, imp)
			}
		}
	}
}

func sortedPkgs(m map[string]*pkg) []*pkg {
	out := make([]*pkg, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *pkg) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	return out
}
