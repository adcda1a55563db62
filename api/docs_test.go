package api_test

import (
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

	for _, path := range []string{"/docs", "/docs/"} {
		code, h, body := e.get(t, path)
		page := string(body)
		if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, code, h.Get("Content-Type"))
		}
		if !strings.Contains(page, `"swaggerJsonUrl":"/openapi.yaml"`) {
			t.Errorf("GET %s does not load /openapi.yaml:\n%s", path, page)
		}
		if hosts := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindAllString(page, -1); len(hosts) > 0 {
			t.Errorf("GET %s names other hosts: %q", path, hosts)
		}
	}

	_, _, body := e.get(t, "/docs")
	page := string(body)
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
		code, h, _ := e.get(t, asset)
		ext := asset[strings.LastIndexByte(asset, '.'):]
		if ct := h.Get("Content-Type"); code != http.StatusOK || wantTypes[ext] == "" || !strings.Contains(ct, wantTypes[ext]) {
			t.Errorf("GET %s: %d %q, want 200 %s", asset, code, ct, wantTypes[ext])
		}
	}
}
