// Package api is Aghali's HTTP interface: the Echo handlers of /api/v1 (docs/api.md is the
// contract, openapi/*.json its machine-readable form), people and their credentials (users,
// organisations, memberships, farm grants, sessions, bearer tokens), authorization, the audit log,
// health and readiness. It is the only importer of echo; echo.Context never leaves this package.
//
// Layout: api.go builds the Server from a Config; routes.go lists every route; one file per
// resource holds its handlers (farms.go, fields.go, zones.go, nodes.go, valves.go, ...); access.go
// decides what a caller may see and do (onFarm loads a thing, then checks its farm); problem.go
// turns every error into RFC 9457 problem+json; people.go and credentials.go own the SQL of the
// tables this package owns. The domain stores come from Config (geo, fieldnodes, irrigation).
//
// The farm map (farm_map.go) is the app's main screen and has a latency goal (p99 ≤ 50 ms for a
// 1,000-field farm, BenchmarkFarmMap): it loads each list once, all concurrently, draws each
// layer as its lists arrive, and writes GeoJSON directly (farm_map_json.go, kept byte-identical
// to geo.Marshal and encoding/json by tests). Its node list is this package's one read of another
// domain's table (farm_map_nodes.go), until fieldnodes lists a farm's nodes fast enough.
//
// Adding a resource (zones, nodes, valves, ...):
//  1. a Config field for its store, defaulted in New from DB when it can be;
//  2. <resource>.go with its handlers: read ids with pathID, bodies with bindJSON (PATCH bodies
//     use pointer members, nullable[T] for members null clears, and json.RawMessage for
//     geometry), check access with requireFarm, onFarm (or requireOrg) before anything else,
//     return the store's errors as they are (or as a refusal with words for a person), and call
//     audit after each successful change;
//  3. its routes in routes.go (authed, with the same parameter names as the others);
//  4. openapi/<resource>.json with its paths and schemas (TestOpenAPIMatchesRoutes insists);
//  5. its sentinel and validation errors in statusOf and fieldProblems (problem.go), one line each;
//  6. for things on the map, a layer in mapLayers (farm_map.go).
//
// Invariants:
//   - Every /api/v1 route except login and the OpenAPI document needs a caller: a session cookie
//     or a bearer token. Cookie-authenticated unsafe requests also carry the session's
//     X-CSRF-Token and no foreign Origin.
//   - Every query is scoped to what the caller may see: handlers reach a farm, and everything on
//     it, only through requireFarm, which answers 404 for what the caller may not see and 403 for
//     what they may see but not change.
//   - Secrets are never stored: passwords as argon2id hashes, session and bearer tokens as
//     SHA-256; they are compared in constant time, and an unknown e-mail costs as much as a wrong
//     password.
//   - Every mutating request by a person is written to audit_log (handlers call audit; a
//     middleware records a generic entry, and logs, when a handler forgot).
//   - Clients never see SQL, stacks or internal error text: an unexpected error is a 500 carrying
//     a request id that is also in the log.
package api
