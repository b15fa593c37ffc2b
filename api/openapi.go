package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"

	"github.com/labstack/echo/v4"
)

// The OpenAPI document is kept as one JSON fragment per resource in openapi/: base.json holds
// the header and the shared components, every other file holds {"paths": ..., "components": ...}
// for its resource. buildOpenAPI merges them; a path, method or component defined twice is an
// error, so resources added concurrently cannot silently overwrite each other.
//
//go:embed openapi/*.json
var openAPIFiles embed.FS

func buildOpenAPI() ([]byte, error) {
	names, err := fs.Glob(openAPIFiles, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	read := func(name string) (map[string]any, error) {
		b, err := openAPIFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return m, nil
	}
	doc, err := read("openapi/base.json")
	if err != nil {
		return nil, err
	}
	paths := objectAt(doc, "paths")
	components := objectAt(doc, "components")
	for _, name := range names {
		if path.Base(name) == "base.json" {
			continue
		}
		frag, err := read(name)
		if err != nil {
			return nil, err
		}
		for key := range frag {
			if key != "paths" && key != "components" {
				return nil, fmt.Errorf("%s: unexpected top-level member %q (only paths and components)", name, key)
			}
		}
		if err := mergeInto(paths, objectAt(frag, "paths"), true, name+": path "); err != nil {
			return nil, err
		}
		fragComponents := objectAt(frag, "components")
		for _, kind := range slices.Sorted(maps.Keys(fragComponents)) {
			sub, ok := fragComponents[kind].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: components.%s is not an object", name, kind)
			}
			if err := mergeInto(objectAt(components, kind), sub, false, name+": components."+kind+"."); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(doc)
}

// mergeInto adds src's members to dst. With byMethod (path items) members merge one level down,
// by method; anything defined twice is an error.
func mergeInto(dst, src map[string]any, byMethod bool, what string) error {
	for k, v := range src {
		old, exists := dst[k]
		if !exists {
			dst[k] = v
			continue
		}
		oldItem, ok1 := old.(map[string]any)
		newItem, ok2 := v.(map[string]any)
		if !ok1 || !ok2 || !byMethod {
			return fmt.Errorf("%s%s is defined twice", what, k)
		}
		for method, op := range newItem {
			if _, dup := oldItem[method]; dup {
				return fmt.Errorf("%s%s %s is defined twice", what, k, method)
			}
			oldItem[method] = op
		}
	}
	return nil
}

// objectAt returns m[key] as an object, creating it when absent.
func objectAt(m map[string]any, key string) map[string]any {
	if o, ok := m[key].(map[string]any); ok {
		return o
	}
	o := map[string]any{}
	m[key] = o
	return o
}

// serveOpenAPI: GET /openapi.json.
func (s *Server) serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.openAPI)
}
