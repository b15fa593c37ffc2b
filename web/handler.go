package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

const (
	indexName = "index.html"
	// importMapMarker in index.html is replaced by the generated import map.
	importMapMarker = "<!--importmap-->"
	// versionParam is the query parameter carrying an asset's content hash.
	versionParam = "v"

	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// asset is one file as served: its bytes, an optional gzip encoding, and validators.
type asset struct {
	body    []byte
	gz      []byte // nil when the file is not worth compressing
	ctype   string
	etag    string // strong ETag of body; the gzip representation appends "-gz"
	version string // short content hash, the value of ?v= in versioned URLs
}

// handler serves the app. It is immutable after newHandler returns.
type handler struct {
	assets map[string]*asset // by slash path relative to static/, e.g. "js/app.js"
	index  *asset
	csp    string
}

// Handler returns the http.Handler serving the embedded web app at the root of a site: the assets
// by their paths, and index.html for "/" and for any other path that does not look like an asset,
// so that the app's own routes (/farms/7) survive a reload. It serves GET and HEAD only. Mount it
// after /api/v1 and the other server routes: it answers every path it is given.
func Handler() http.Handler {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	h, err := newHandler(sub)
	if err != nil {
		// The embedded files are fixed at build time and the package tests build this table, so
		// an error here is a broken build, not a runtime condition.
		panic(fmt.Sprintf("web: %v", err))
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	h := &handler{assets: make(map[string]*asset)}
	gzipped := make(map[string][]byte)
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		if base, ok := strings.CutSuffix(name, ".gz"); ok {
			gzipped[base] = body
			return nil
		}
		h.assets[name] = &asset{body: body, ctype: contentType(name)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded app: %w", err)
	}
	for base, gz := range gzipped {
		a, ok := h.assets[base]
		if !ok {
			return nil, fmt.Errorf("%s.gz has no uncompressed original", base)
		}
		if err := sameContent(a.body, gz); err != nil {
			return nil, fmt.Errorf("%s.gz: %w (rerun scripts/vendor-web.sh)", base, err)
		}
		a.gz = gz
	}
	index, ok := h.assets[indexName]
	if !ok {
		return nil, fmt.Errorf("no %s", indexName)
	}
	delete(h.assets, indexName)
	var z compressor
	for name, a := range h.assets {
		a.version, a.etag = hashOf(a.body)
		if a.gz == nil && compressible(name) {
			a.gz = z.compress(a.body)
		}
	}
	page, importMap, err := h.versionIndex(index.body)
	if err != nil {
		return nil, err
	}
	h.index = &asset{body: page, ctype: index.ctype, gz: z.compress(page)}
	h.index.version, h.index.etag = hashOf(page)
	h.csp = contentSecurityPolicy(importMap)
	return h, nil
}

// versionIndex rewrites index.html: every quoted absolute reference to an asset ("/css/app.css")
// gets the asset's ?v=<hash>, and the import-map marker becomes an import map giving each ES module
// its versioned URL, so that imports between modules (import "./api.js") are versioned too. It
// returns the page and the import map's script text, which the CSP allows by hash.
func (h *handler) versionIndex(page []byte) ([]byte, string, error) {
	names := make([]string, 0, len(h.assets))
	for name := range h.assets {
		names = append(names, name)
	}
	slices.Sort(names)
	imports := make(map[string]string)
	for _, name := range names {
		a := h.assets[name]
		url := "/" + name
		versioned := url + "?" + versionParam + "=" + a.version
		page = bytes.ReplaceAll(page, []byte(`"`+url+`"`), []byte(`"`+versioned+`"`))
		if path.Ext(name) == ".js" && strings.HasPrefix(name, "js/") {
			imports[url] = versioned
		}
	}
	if !bytes.Contains(page, []byte(importMapMarker)) {
		return nil, "", fmt.Errorf("%s lacks the %s marker", indexName, importMapMarker)
	}
	m, err := json.Marshal(map[string]any{"imports": imports})
	if err != nil {
		return nil, "", err
	}
	script := string(m)
	page = bytes.Replace(page, []byte(importMapMarker), []byte(`<script type="importmap">`+script+`</script>`), 1)
	return page, script, nil
}

// contentSecurityPolicy keeps the page to its own origin. MapLibre's single-file build starts its
// worker from a blob: URL, and its CSS uses data: images; the inline import map is allowed by hash.
func contentSecurityPolicy(importMap string) string {
	sum := sha256.Sum256([]byte(importMap))
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		"style-src 'self'",
		"img-src 'self' data: blob:",
		"worker-src 'self' blob:",
		"child-src blob:",
		"connect-src 'self'",
		"font-src 'self'",
		"manifest-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if a, ok := h.assets[name]; ok {
		cache := cacheRevalidate
		if r.URL.Query().Get(versionParam) == a.version {
			cache = cacheImmutable
		}
		serve(w, r, a, cache)
		return
	}
	if name != "" && name != indexName && looksLikeAsset(name) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Security-Policy", h.csp)
	w.Header().Set("Referrer-Policy", "same-origin")
	serve(w, r, h.index, cacheRevalidate)
}

// looksLikeAsset tells a missing file (a 404) from one of the app's own routes (index.html).
// The app's routes never have a dot in their last segment and never live under the asset folders.
func looksLikeAsset(name string) bool {
	first, _, _ := strings.Cut(name, "/")
	switch first {
	case "api", "js", "css", "vendor":
		return true
	}
	return strings.Contains(path.Base(name), ".")
}

func serve(w http.ResponseWriter, r *http.Request, a *asset, cache string) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("Cache-Control", cache)
	body, etag := a.body, a.etag
	if a.gz != nil {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			hdr.Set("Content-Encoding", "gzip")
			body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		}
	}
	hdr.Set("ETag", etag)
	// A zero modification time: the ETag is the validator. ServeContent handles HEAD, Range and
	// If-None-Match.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding values list gzip (or *) with a non-zero quality.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip", "*":
			default:
				continue
			}
			if quality(params) > 0 {
				return true
			}
		}
	}
	return false
}

// quality returns the q parameter of an Accept-Encoding element (1 when absent, 0 when malformed).
func quality(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return q
		}
	}
	return 1
}

// contentType is fixed here rather than taken from mime.TypeByExtension, whose answers depend on
// the host's /etc/mime.types.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return "application/json"
	case ".webmanifest":
		return "application/manifest+json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".html", ".js", ".css", ".json", ".webmanifest", ".svg", ".txt":
		return true
	}
	return false
}

func hashOf(b []byte) (version, etag string) {
	sum := sha256.Sum256(b)
	full := hex.EncodeToString(sum[:])
	return full[:12], `"` + full[:24] + `"`
}

// compressor gzips the app's own files at construction, reusing one writer: a gzip.Writer at
// BestCompression allocates about a megabyte.
type compressor struct {
	zw *gzip.Writer
}

// compress gzips b, or returns nil when that saves too little to be worth a second representation.
func (z *compressor) compress(b []byte) []byte {
	if len(b) < 512 {
		return nil
	}
	var buf bytes.Buffer
	if z.zw == nil {
		z.zw, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	} else {
		z.zw.Reset(&buf)
	}
	z.zw.Write(b) // writes to a bytes.Buffer do not fail
	z.zw.Close()
	if buf.Len() > len(b)*9/10 {
		return nil
	}
	return buf.Bytes()
}

// sameContent checks that gz decompresses to want, so a stale .gz can never be served. It compares
// digests to avoid holding a second decompressed copy.
func sameContent(want, gz []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return err
	}
	got := sha256.New()
	if _, err := io.Copy(got, zr); err != nil {
		return err
	}
	if sum := sha256.Sum256(want); !bytes.Equal(got.Sum(nil), sum[:]) {
		return fmt.Errorf("does not decompress to the original")
	}
	return nil
}
