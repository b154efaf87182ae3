// Command testprogress runs `go test -json` with the given arguments and
// prints one line per package as it finishes, so a long `make test` shows
// that it is alive (go test's plain output waits for each package in list
// order, so one slow simulator package hides all the others).
//
// A failing test's whole output is printed when its package finishes; build
// errors are printed as they come. Every minute the packages still running
// are named. The last line is "N passed, N failed, N skipped" (tests, not
// packages), and the exit status is go test's.
//
//	go run ./internal/cmd/testprogress -timeout 20m ./...
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// pkgState is what is kept of a package until it finishes.
type pkgState struct {
	started time.Time
	out     map[string]*strings.Builder // per test ("" = package level)
	failed  []string                    // tests that failed, in order
}

type report struct {
	mu                      sync.Mutex
	w                       io.Writer
	pkgs                    map[string]*pkgState
	passed, failed, skipped int
	failedPkgs              []string
}

func newReport(w io.Writer) *report {
	return &report{w: w, pkgs: map[string]*pkgState{}}
}

func (r *report) pkg(name string) *pkgState {
	p := r.pkgs[name]
	if p == nil {
		p = &pkgState{started: time.Now(), out: map[string]*strings.Builder{}}
		r.pkgs[name] = p
	}
	return p
}

// handle consumes one event.
func (r *report) handle(ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Action == "build-output" {
		fmt.Fprint(r.w, ev.Output)
		return
	}
	if ev.Package == "" {
		return
	}
	p := r.pkg(ev.Package)
	switch ev.Action {
	case "output":
		b := p.out[ev.Test]
		if b == nil {
			b = &strings.Builder{}
			p.out[ev.Test] = b
		}
		// Bounded: a runaway test must not hold gigabytes here.
		if b.Len() < 1<<20 {
			b.WriteString(ev.Output)
		}
	case "pass", "fail", "skip":
		if ev.Test != "" {
			switch ev.Action {
			case "pass":
				r.passed++
				delete(p.out, ev.Test)
			case "fail":
				r.failed++
				p.failed = append(p.failed, ev.Test)
			case "skip":
				r.skipped++
			}
			return
		}
		r.finish(ev, p)
	}
}

// finish prints a package's line (and on failure its failed tests' output)
// in go test's own format, which CI also reads.
func (r *report) finish(ev event, p *pkgState) {
	delete(r.pkgs, ev.Package)
	switch ev.Action {
	case "pass":
		fmt.Fprintf(r.w, "ok  \t%s\t%.3fs\n", ev.Package, ev.Elapsed)
	case "skip":
		fmt.Fprintf(r.w, "?   \t%s\t[no test files]\n", ev.Package)
	case "fail":
		r.failedPkgs = append(r.failedPkgs, ev.Package)
		for _, name := range p.failed {
			if b := p.out[name]; b != nil {
				fmt.Fprint(r.w, b.String())
			}
		}
		if b := p.out[""]; b != nil {
			// go test's own closing lines for the package: ours follows.
			for _, line := range strings.SplitAfter(b.String(), "\n") {
				if line != "FAIL\n" && !strings.HasPrefix(line, "FAIL\t"+ev.Package+"\t") {
					fmt.Fprint(r.w, line)
				}
			}
		}
		fmt.Fprintf(r.w, "FAIL\t%s\t%.3fs\n", ev.Package, ev.Elapsed)
	}
}

// running names the packages that started but have not finished.
func (r *report) running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for name, p := range r.pkgs {
		names = append(names, fmt.Sprintf("%s (%ds)", name, int(time.Since(p.started).Seconds())))
	}
	sort.Strings(names)
	return names
}

func (r *report) summary() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failedPkgs) > 0 {
		fmt.Fprintf(r.w, "failed packages: %s\n", strings.Join(r.failedPkgs, " "))
	}
	fmt.Fprintf(r.w, "%d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped)
}

func main() {
	args := append([]string{"test", "-json"}, os.Args[1:]...)
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testprogress:", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testprogress:", err)
		os.Exit(2)
	}
	rep := newReport(os.Stdout)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if names := rep.running(); len(names) > 0 {
					fmt.Printf("... still running: %s\n", strings.Join(names, ", "))
				}
			}
		}
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// Not an event (a tool printing to stdout): pass it on.
			fmt.Println(sc.Text())
			continue
		}
		rep.handle(ev)
	}
	err = cmd.Wait()
	close(done)
	rep.summary()
	if err != nil {
		code := 1
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
		os.Exit(code)
	}
}
