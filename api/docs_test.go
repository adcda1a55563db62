package api_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestDocsPage: GET /docs is Swagger UI, served whole by this server: every
// asset its page references answers 200 with its content type, the page
// names no other host, and it loads this server's /openapi.yaml.
func TestDocsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	get := func(t *testing.T, path string) (*http.Response, string) {
		t.Helper()
		r, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.h1.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(body)
	}

	for _, path := range []string{"/docs", "/docs/"} {
		res, page := get(t, path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if !strings.Contains(page, `"swaggerJsonUrl":"/openapi.yaml"`) {
			t.Errorf("GET %s does not load /openapi.yaml:\n%s", path, page)
		}
		if hosts := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindAllString(page, -1); len(hosts) > 0 {
			t.Errorf("GET %s names other hosts: %q", path, hosts)
		}
	}

	_, page := get(t, "/docs")
	// Scripts come as application/javascript or text/javascript: browsers
	// run both.
	wantTypes := map[string]string{".css": "text/css", ".js": "javascript", ".png": "image/png"}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("the page references %d assets, want the stylesheet, the scripts and the icons: %q", len(refs), refs)
	}
	for _, ref := range refs {
		asset := ref[1]
		if !strings.HasPrefix(asset, "/docs/") {
			t.Errorf("asset %q is not served under /docs/", asset)
			continue
		}
		res, _ := get(t, asset)
		ext := asset[strings.LastIndexByte(asset, '.'):]
		if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || wantTypes[ext] == "" || !strings.Contains(ct, wantTypes[ext]) {
			t.Errorf("GET %s: %d %q, want 200 %s", asset, res.StatusCode, res.Header.Get("Content-Type"), wantTypes[ext])
		}
	}
}
