package observe

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/clustertest"
)

// chromium finds Debian's chromium (installed by .ci/run). Without it the
// browser test skips on a developer machine and fails on CI (CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium); the status page browser test must run on CI")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// artifactDir is where screenshots go: $RINGMASTER_ARTIFACTS when set,
// else the test's artifact directory (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	if d := os.Getenv("RINGMASTER_ARTIFACTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.ArtifactDir()
}

// TestStatusPageLive opens node 1's status page in headless chromium: it
// shows the three members, and after node 3 is killed it shows two
// without a reload (a marker set in the page survives). Screenshots of
// both are saved as artifacts.
func TestStatusPageLive(t *testing.T) {
	bin := chromium(t)
	c := clustertest.New(t, clustertest.Options{Nodes: 3})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // chromium refuses to run as root with its sandbox
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1200, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	url := "http://" + c.Node(1).Metrics + "/"
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		require.NoError(t, err, js)
		return v
	}
	// members waits until the page shows want members (the table's
	// data-count and its rows).
	members := func(want int) {
		t.Helper()
		waitFor(t, fmt.Sprintf("the page shows %d members", want), func() error {
			got := eval(`document.getElementById("members").dataset.count + "/" + document.querySelectorAll("#members tbody tr").length`)
			if got != fmt.Sprintf("%d/%d", want, want) {
				return fmt.Errorf("data-count/rows = %s", got)
			}
			return nil
		})
	}
	dir := artifactDir(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (below: JPEG)
		require.NoError(t, err)
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, png, 0o644))
		t.Logf("screenshot: %s", p)
	}

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible("#members")))
	members(3)
	waitFor(t, "the page is live", func() error {
		if s := eval(`document.getElementById("live").className`); s != "on" {
			return fmt.Errorf("live indicator %q", s)
		}
		return nil
	})
	// Set only in this page load: a reload would drop it.
	require.Equal(t, "same-page", eval(`window.__ringmasterTest = "same-page"`))
	text := eval(`document.getElementById("members").innerText`)
	for _, want := range []string{"n1", "n2", "n3", "127.0.0.1", "127.0.0.3"} {
		require.Contains(t, text, want)
	}
	shot("status-page-3-members.png")

	// A resource appears, live, with the node it runs on.
	rf := filepath.Join(c.Dir, "r.toml")
	require.NoError(t, os.WriteFile(rf, []byte("[cluster]\nstonith-enabled = false\n[[resource]]\nid = \"web\"\nagent = \"builtin:dummy\"\n"), 0o644))
	if out, code := c.Ctl(1, "crm", "apply", "-f", rf); code != 0 {
		t.Fatalf("crm apply: %s", out)
	}
	waitFor(t, "the page shows the resource started", func() error {
		if got := eval(`document.getElementById("resources").innerText`); !strings.Contains(got, "web") || !strings.Contains(got, "started") {
			return fmt.Errorf("resources: %q", got)
		}
		return nil
	})
	require.Equal(t, "same-page", eval(`String(window.__ringmasterTest)`), "the page was reloaded")
	shot("status-page-resource.png")

	c.Kill(3)
	members(2)
	require.Equal(t, "same-page", eval(`String(window.__ringmasterTest)`), "the page was reloaded")
	waitFor(t, "the events show node 3 leaving", func() error {
		if ev := eval(`document.getElementById("events").innerText`); !strings.Contains(ev, "left=[3]") {
			return fmt.Errorf("events: %s", ev)
		}
		return nil
	})
	require.Equal(t, "quorate", eval(`document.getElementById("quorate").innerText`))
	shot("status-page-2-members.png")
}
