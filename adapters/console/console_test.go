package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	cases := []struct {
		method, path string
		status       int
		ctype        string
		body         string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script type="module" src="/console/app.js"></script>`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/console/app.js", 200, "text/javascript; charset=utf-8", "import {"},
		{"GET", "/console/style.css", 200, "text/css; charset=utf-8", ":root"},
		{"GET", "/console/vendor/chart.umd.min.js", 200, "text/javascript; charset=utf-8", "Chart.js v"},
		{"GET", "/console/vendor/chart.js.LICENSE.md", 200, "text/plain; charset=utf-8", "MIT"},
		{"GET", "/console/", 404, "", ""},
		{"GET", "/console/nope.js", 404, "", ""},
		{"GET", "/console/../console.go", 404, "", ""},
		{"GET", "/console/vendor/../app.js", 404, "", ""},
		{"GET", "/console/.hidden", 404, "", ""},
		{"GET", "/elsewhere", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "/", nil)
			req.URL.Path = c.path // unclean paths as a client could send them
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			res := w.Result()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			// Every answer, errors too, carries the security headers.
			for k, want := range map[string]string{
				"Content-Security-Policy": CSP,
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
			} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if c.ctype != "" && res.Header.Get("Content-Type") != c.ctype {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), c.ctype)
			}
			if !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("body lacks %q", c.body)
			}
			if c.method == "HEAD" && w.Body.Len() != 0 {
				t.Error("HEAD with a body")
			}
		})
	}
}

// The policy forbids what the app must never need: inline code, eval and
// framing.
func TestCSPIsStrict(t *testing.T) {
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP allows %q", bad)
		}
	}
}

// The app never parses data as HTML: no innerHTML, outerHTML,
// insertAdjacentHTML or document.write in its own scripts.
func TestAssetsUseNoHTMLSinks(t *testing.T) {
	for _, name := range []string{"assets/app.js", "assets/ui.js", "assets/merkle.js", "assets/index.html"} {
		b, err := assets.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", " style=", "<style", "onclick="} {
			if strings.Contains(string(b), sink) {
				t.Errorf("%s uses %s", name, sink)
			}
		}
	}
	if b, _ := assets.ReadFile("assets/index.html"); strings.Contains(string(b), "<script>") {
		t.Error("index.html has an inline script")
	}
}

// The handler serves its tree without a server around it (as httpapi
// mounts it).
var _ http.Handler = Handler()
