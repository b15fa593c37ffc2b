package web_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aghali/aghali/web"
)

type response struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, h http.Handler, method, target string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Result().Header, rec.Body.Bytes()}
}

var (
	versionedRef = regexp.MustCompile(`"(/[^"?]+)\?v=([0-9a-f]{12})"`)
	importMapRe  = regexp.MustCompile(`<script type="importmap">(.*?)</script>`)
	moduleImport = regexp.MustCompile(`(?m)^import .* from '\./([\w-]+\.js)';$`)
)

func TestIndexIsServedForRootAndAppRoutes(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, path := range []string{"/", "/index.html", "/farms/7", "/farms/7/", "/alerts", "/farms/7?x=1"} {
		r := get(t, h, http.MethodGet, path)
		if r.status != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", path, r.status)
			continue
		}
		if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", path, cc)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if !bytes.Contains(r.body, []byte(`data-testid="login-form"`)) || bytes.Contains(r.body, []byte("<!--importmap-->")) {
			t.Errorf("GET %s: not the processed index.html", path)
		}
	}
}

func TestMissingAssetsAre404(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, path := range []string{"/js/nope.js", "/css/", "/vendor/maplibre-gl/maplibre-gl.js.map", "/api/v1/farms", "/favicon.ico", "/robots.txt", "/vendor/maplibre-gl/maplibre-gl.js.gz"} {
		r := get(t, h, http.MethodGet, path)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, r.status)
		}
		if bytes.Contains(r.body, []byte("<html")) {
			t.Errorf("GET %s: served index.html for a missing asset", path)
		}
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	r := get(t, h, http.MethodPost, "/")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d Allow %q, want 405 and GET, HEAD", r.status, r.header.Get("Allow"))
	}
	head := get(t, h, http.MethodHead, "/js/app.js")
	full := get(t, h, http.MethodGet, "/js/app.js")
	if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get("Content-Length") != full.header.Get("Content-Length") {
		t.Errorf("HEAD /js/app.js: status %d, %d body bytes, length %q vs %q", head.status, len(head.body), head.header.Get("Content-Length"), full.header.Get("Content-Length"))
	}
}

func TestContentTypes(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for path, want := range map[string]string{
		"/css/app.css":                        "text/css; charset=utf-8",
		"/js/app.js":                          "text/javascript; charset=utf-8",
		"/vendor/maplibre-gl/maplibre-gl.js":  "text/javascript; charset=utf-8",
		"/vendor/maplibre-gl/maplibre-gl.css": "text/css; charset=utf-8",
		"/vendor/maplibre-gl/LICENSE.txt":     "text/plain; charset=utf-8",
		"/manifest.webmanifest":               "application/manifest+json",
		"/icon.svg":                           "image/svg+xml",
	} {
		r := get(t, h, http.MethodGet, path)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != want {
			t.Errorf("GET %s: status %d Content-Type %q, want 200 %q", path, r.status, r.header.Get("Content-Type"), want)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
		}
	}
}

// TestVersionedAssetsAreImmutable follows every versioned reference in index.html: with its hash
// an asset may be cached for a year; without it, or with a stale hash, it must be revalidated.
func TestVersionedAssetsAreImmutable(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	index := get(t, h, http.MethodGet, "/")
	refs := versionedRef.FindAllSubmatch(index.body, -1)
	var paths []string
	for _, m := range refs {
		paths = append(paths, string(m[1]))
	}
	for _, want := range []string{"/css/app.css", "/js/app.js", "/vendor/maplibre-gl/maplibre-gl.js", "/vendor/maplibre-gl/maplibre-gl.css", "/icon.svg"} {
		if !slices.Contains(paths, want) {
			t.Errorf("index.html does not reference %s with a version; versioned: %q", want, paths)
		}
	}
	for _, m := range refs {
		path, version := string(m[1]), string(m[2])
		r := get(t, h, http.MethodGet, path+"?v="+version)
		if r.status != http.StatusOK {
			t.Errorf("GET %s?v=%s: status %d", path, version, r.status)
			continue
		}
		if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s?v=%s: Cache-Control %q, want immutable", path, version, cc)
		}
		sum := sha256.Sum256(r.body)
		if got := base16(sum[:])[:12]; got != version {
			t.Errorf("%s: version %s is not the content hash %s", path, version, got)
		}
		for _, q := range []string{"", "?v=000000000000"} {
			if cc := get(t, h, http.MethodGet, path+q).header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("GET %s%s: Cache-Control %q, want no-cache", path, q, cc)
			}
		}
	}
}

func base16(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestImportMapCoversEveryModule checks what makes module imports versioned and fast: every module
// that app.js reaches has an import-map entry and a modulepreload link, and the CSP allows the
// inline import map by its hash.
func TestImportMapCoversEveryModule(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	index := get(t, h, http.MethodGet, "/")
	m := importMapRe.FindSubmatch(index.body)
	if m == nil {
		t.Fatal("no import map in index.html")
	}
	var importMap struct {
		Imports map[string]string `json:"imports"`
	}
	if err := json.Unmarshal(m[1], &importMap); err != nil {
		t.Fatalf("import map: %v", err)
	}
	sum := sha256.Sum256(m[1])
	if csp := index.header.Get("Content-Security-Policy"); !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("CSP %q does not allow the import map by its hash", csp)
	}
	seen := map[string]bool{}
	queue := []string{"app.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		url := "/js/" + name
		versioned, ok := importMap.Imports[url]
		if !ok {
			t.Errorf("import map lacks %s", url)
			continue
		}
		if !bytes.Contains(index.body, []byte(`<link rel="modulepreload" href="`+versioned+`">`)) {
			t.Errorf("index.html has no modulepreload link for %s", versioned)
		}
		r := get(t, h, http.MethodGet, versioned)
		if r.status != http.StatusOK {
			t.Errorf("GET %s: status %d", versioned, r.status)
			continue
		}
		for _, im := range moduleImport.FindAllSubmatch(r.body, -1) {
			queue = append(queue, string(im[1]))
		}
	}
	if len(seen) < 8 {
		t.Errorf("followed only %d modules from app.js: %v", len(seen), seen)
	}
}

func TestGzipNegotiation(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, path := range []string{"/", "/js/app.js", "/css/app.css", "/vendor/maplibre-gl/maplibre-gl.js", "/vendor/maplibre-gl/maplibre-gl.css"} {
		plain := get(t, h, http.MethodGet, path)
		if plain.header.Get("Content-Encoding") != "" {
			t.Errorf("GET %s without Accept-Encoding: Content-Encoding %q", path, plain.header.Get("Content-Encoding"))
		}
		if !strings.Contains(plain.header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("GET %s: Vary %q lacks Accept-Encoding", path, plain.header.Get("Vary"))
		}
		for ae, wantGzip := range map[string]bool{
			"gzip":                 true,
			"br, gzip;q=0.5":       true,
			"gzip, deflate, br":    true,
			"*":                    true,
			"gzip;q=0":             false,
			"gzip; q=0.000, br":    false,
			"deflate":              false,
			"identity":             false,
			"GZIP ; Q=1, identity": true,
		} {
			r := get(t, h, http.MethodGet, path, "Accept-Encoding", ae)
			if got := r.header.Get("Content-Encoding") == "gzip"; got != wantGzip {
				t.Errorf("GET %s Accept-Encoding %q: gzip = %v, want %v", path, ae, got, wantGzip)
				continue
			}
			if !wantGzip {
				continue
			}
			zr, err := gzip.NewReader(bytes.NewReader(r.body))
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			body, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(body, plain.body) {
				t.Errorf("GET %s: gzip body does not decompress to the plain body (%v)", path, err)
			}
			if r.header.Get("ETag") == plain.header.Get("ETag") {
				t.Errorf("GET %s: gzip and identity share ETag %s", path, r.header.Get("ETag"))
			}
		}
	}
	// The biggest download on a weak link.
	plain := get(t, h, http.MethodGet, "/vendor/maplibre-gl/maplibre-gl.js")
	gz := get(t, h, http.MethodGet, "/vendor/maplibre-gl/maplibre-gl.js", "Accept-Encoding", "gzip")
	if len(gz.body)*3 > len(plain.body) {
		t.Errorf("maplibre-gl.js: gzip %d bytes of %d; want under a third", len(gz.body), len(plain.body))
	}
}

func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, path := range []string{"/", "/farms/3", "/js/app.js"} {
		for _, ae := range []string{"", "gzip"} {
			first := get(t, h, http.MethodGet, path, "Accept-Encoding", ae)
			etag := first.header.Get("ETag")
			if etag == "" {
				t.Errorf("GET %s: no ETag", path)
				continue
			}
			again := get(t, h, http.MethodGet, path, "Accept-Encoding", ae, "If-None-Match", etag)
			if again.status != http.StatusNotModified || len(again.body) != 0 {
				t.Errorf("GET %s If-None-Match %s: status %d with %d bytes, want 304", path, etag, again.status, len(again.body))
			}
		}
	}
}

// TestEverythingIsServedByTheBinary: the app's own files load nothing from elsewhere (no CDN,
// font, analytics or tile server). The vendored MapLibre bundle mentions URLs in comments and
// error texts; the CSP, checked in the browser test, covers what it actually loads.
func TestEverythingIsServedByTheBinary(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	index := get(t, h, http.MethodGet, "/")
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	check := func(path string, body []byte) {
		for _, m := range external.FindAll(body, -1) {
			if s := string(m); s != "http://www.w3.org" && !strings.HasPrefix(s, "//www.w3.org") {
				t.Errorf("%s references %s", path, s)
			}
		}
	}
	check("/", index.body)
	for _, m := range versionedRef.FindAllSubmatch(index.body, -1) {
		if path := string(m[1]); !strings.HasPrefix(path, "/vendor/") {
			check(path, get(t, h, http.MethodGet, path).body)
		}
	}
}

func TestVendoredMapLibreMatchesThePin(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("../scripts/vendor-web.sh")
	if err != nil {
		t.Fatal(err)
	}
	pin := regexp.MustCompile(`(?m)^MAPLIBRE_VERSION=([0-9.]+)$`).FindSubmatch(script)
	if pin == nil {
		t.Fatal("scripts/vendor-web.sh has no MAPLIBRE_VERSION=")
	}
	h := web.Handler()
	version := strings.TrimSpace(string(get(t, h, http.MethodGet, "/vendor/maplibre-gl/VERSION").body))
	if version != string(pin[1]) {
		t.Errorf("vendored VERSION %q, pinned %q: rerun scripts/vendor-web.sh", version, pin[1])
	}
	js := get(t, h, http.MethodGet, "/vendor/maplibre-gl/maplibre-gl.js").body
	if !bytes.Contains(js[:min(len(js), 400)], []byte("/v"+version+"/LICENSE.txt")) {
		t.Errorf("maplibre-gl.js banner does not name v%s", version)
	}
	license := get(t, h, http.MethodGet, "/vendor/maplibre-gl/LICENSE.txt")
	if license.status != http.StatusOK || !bytes.Contains(license.body, []byte("Redistribution and use in source and binary forms")) {
		t.Errorf("vendored LICENSE.txt missing or not the BSD licence (status %d)", license.status)
	}
}
