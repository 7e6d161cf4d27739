// Package console is cxledger's web console: a small client-side app
// (plain ES modules and Chart.js, embedded with go:embed) that the HTTP
// server mounts at / and /console/. The pages hold no data: the app calls
// the /v1 API with the viewer's token in the Authorization header, so it
// sees exactly what the token's role may see, and a cross-site request
// carries no credential (the token lives in sessionStorage, never in a
// cookie or a URL).
//
// Every response carries a strict Content-Security-Policy (scripts and
// styles from this origin only, no inline code, no eval, no framing),
// X-Content-Type-Options: nosniff and a no-referrer policy.
package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// CSP is the Content-Security-Policy of every console response. The app
// renders with DOM APIs (textContent), so it needs no inline script or
// style; Chart.js draws on canvases and sets styles through the CSSOM,
// which 'self' allows.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the console: the app's page at / and its assets under
// /console/. Anything else under /console/ is 404.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return &handler{files: sub}
}

type handler struct {
	files fs.FS
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := "index.html"
	if r.URL.Path != "/" {
		rest, ok := strings.CutPrefix(r.URL.Path, "/console/")
		clean := path.Clean("/" + rest)[1:]
		if !ok || clean == "" || clean != rest || strings.HasPrefix(clean, ".") {
			http.NotFound(w, r)
			return
		}
		name = clean
	}
	data, err := fs.ReadFile(h.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".html":
		ctype = "text/html; charset=utf-8"
	case ".md":
		ctype = "text/plain; charset=utf-8"
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hd.Set("Content-Type", ctype)
	// The page is small and changes with each release: always revalidate.
	hd.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}
