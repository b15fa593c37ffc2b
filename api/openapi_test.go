package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestOpenAPIMatchesRoutes keeps openapi/*.json and routes.go in step: every registered /api/v1
// route is in the document and every operation of the document is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Servers []struct{ URL string }                `json:"servers"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	r := e.anon().do("GET", "/api/v1/openapi.json", nil).want(http.StatusOK)
	r.decode(&doc)
	if doc.OpenAPI != "3.1.0" || len(doc.Servers) != 1 || doc.Servers[0].URL != "/api/v1" {
		t.Fatalf("header: openapi %q, servers %+v", doc.OpenAPI, doc.Servers)
	}

	registered := map[string]bool{}
	for _, rt := range e.srv.echo.Routes() {
		if rt.Method == echo.RouteNotFound || !strings.HasPrefix(rt.Path, "/api/v1/") {
			continue
		}
		registered[strings.ToLower(rt.Method)+" "+openAPIPath(strings.TrimPrefix(rt.Path, "/api/v1"))] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented[method+" "+path] = true
			}
		}
	}
	for op := range registered {
		if !documented[op] {
			t.Errorf("route %s is not in the OpenAPI document (add it to openapi/<resource>.json)", op)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("the OpenAPI document lists %s, which is not a route (routes.go)", op)
		}
	}
	if len(registered) < 20 {
		t.Errorf("only %d routes found; is the walk broken?", len(registered))
	}
}

// openAPIPath turns echo's /farms/:farm into OpenAPI's /farms/{farm}.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// TestOpenAPIReferencesResolve: every $ref points at a defined component, and every path
// parameter of a path is declared.
func TestOpenAPIReferencesResolve(t *testing.T) {
	t.Parallel()
	raw, err := buildOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				refs = append(refs, ref)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	if len(refs) < 50 {
		t.Fatalf("only %d $refs found", len(refs))
	}
	for _, ref := range refs {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var cur any = doc
		for _, p := range parts {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[p]
		}
		if cur == nil {
			t.Errorf("$ref %s resolves to nothing", ref)
		}
	}

	params := doc["components"].(map[string]any)["parameters"].(map[string]any)
	for path, item := range doc["paths"].(map[string]any) {
		var declared []string
		collect := func(list any) {
			ps, _ := list.([]any)
			for _, p := range ps {
				pm := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					pm, _ = params[strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
				}
				if pm["in"] == "path" {
					declared = append(declared, pm["name"].(string))
				}
			}
		}
		collect(item.(map[string]any)["parameters"])
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				name := strings.Trim(seg, "{}")
				if !slices.Contains(declared, name) {
					t.Errorf("path %s: parameter %s is not declared at the path level", path, name)
				}
			}
		}
	}
}

func TestOpenAPIMergeRefusesDuplicates(t *testing.T) {
	t.Parallel()
	dst := map[string]any{"/farms": map[string]any{"get": 1}}
	if err := mergeInto(dst, map[string]any{"/farms": map[string]any{"post": 2}}, true, "x: path "); err != nil {
		t.Errorf("different methods of one path: %v", err)
	}
	if err := mergeInto(dst, map[string]any{"/farms": map[string]any{"get": 3}}, true, "x: path "); err == nil {
		t.Error("a method defined twice was accepted")
	}
	schemas := map[string]any{"Farm": map[string]any{}}
	if err := mergeInto(schemas, map[string]any{"Farm": map[string]any{}}, false, "x: schemas."); err == nil {
		t.Error("a schema defined twice was accepted")
	}
}
