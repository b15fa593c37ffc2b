package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes lists every route the server answers. docs/api.md is the contract and openapi/*.json
// describes each /api/v1 route; TestOpenAPIMatchesRoutes fails when the three drift apart.
//
// Path parameters: the same name for the same thing everywhere (":farm", ":field", ...), so the
// router and the OpenAPI document agree. A new resource adds its handler file, its lines here
// and its openapi/<resource>.json fragment.
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.observe) // outermost: request id, log line, panics, error rendering
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
		// Level 4: on the 2 MB map of a 1,000-field farm it takes 8 ms where the default (6)
		// takes 22, for 5 % more bytes (176 KB instead of 167 KB).
		Level:     4,
		MinLength: 1024, // below this gzip costs more than it saves, even on a weak link
		// The farm map compresses itself, layer by layer (farm_map_gzip.go).
		Skipper: func(c echo.Context) bool { return c.Path() == "/metrics" || c.Path() == "/api/v1/farms/:farm/map" },
	}))
	e.Use(s.limits)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metrics)

	v1 := e.Group("/api/v1")
	// public: no caller needed.
	public := func(method, path string, h echo.HandlerFunc) { v1.Add(method, path, h, s.sameOrigin) }
	// authed: a session (with CSRF token on unsafe methods) or a bearer token.
	authed := func(method, path string, h echo.HandlerFunc) { v1.Add(method, path, h, s.authenticate) }
	const (
		get   = http.MethodGet
		post  = http.MethodPost
		patch = http.MethodPatch
		del   = http.MethodDelete
		put   = http.MethodPut
	)

	public(get, "/openapi.json", s.serveOpenAPI)

	// session.go, tokens.go
	public(post, "/auth/login", s.login)
	authed(get, "/auth/session", s.getSession)
	authed(post, "/auth/logout", s.logout)
	authed(get, "/auth/tokens", s.listTokens)
	authed(post, "/auth/tokens", s.createToken)
	authed(del, "/auth/tokens/:id", s.revokeToken)

	// orgs.go, users.go
	authed(get, "/orgs", s.listOrgs)
	authed(get, "/orgs/:org/users", s.listOrgUsers)
	authed(post, "/orgs/:org/users", s.createOrgUser)
	authed(patch, "/orgs/:org/users/:user", s.updateOrgUser)
	authed(del, "/orgs/:org/users/:user", s.removeOrgUser)

	// farms.go, farm_map.go
	authed(get, "/farms", s.listFarms)
	authed(post, "/farms", s.createFarm)
	authed(get, "/farms/:farm", s.getFarm)
	authed(patch, "/farms/:farm", s.updateFarm)
	authed(del, "/farms/:farm", s.deleteFarm)
	authed(get, "/farms/:farm/map", s.farmMap)

	// fields.go
	authed(get, "/farms/:farm/fields", s.listFields)
	authed(post, "/farms/:farm/fields", s.createField)
	authed(get, "/fields/:field", s.getField)
	authed(patch, "/fields/:field", s.updateField)
	authed(del, "/fields/:field", s.deleteField)

	// zones.go
	authed(get, "/farms/:farm/zones", s.listZones)
	authed(post, "/farms/:farm/zones", s.createZone)
	authed(get, "/zones/:zone", s.getZone)
	authed(patch, "/zones/:zone", s.updateZone)
	authed(del, "/zones/:zone", s.deleteZone)

	// water_sources.go
	authed(get, "/farms/:farm/water-sources", s.listWaterSources)
	authed(post, "/farms/:farm/water-sources", s.createWaterSource)
	authed(get, "/water-sources/:id", s.getWaterSource)
	authed(patch, "/water-sources/:id", s.updateWaterSource)
	authed(del, "/water-sources/:id", s.deleteWaterSource)

	// nodes.go, node_readings.go
	authed(get, "/farms/:farm/nodes", s.listNodes)
	authed(post, "/farms/:farm/nodes", s.createNode)
	authed(get, "/nodes/:node", s.getNode)
	authed(patch, "/nodes/:node", s.updateNode)
	authed(del, "/nodes/:node", s.deleteNode)
	authed(post, "/nodes/:node/secret", s.rotateNodeSecret)
	authed(get, "/nodes/:node/readings", s.nodeReadings)

	// controllers.go
	authed(get, "/farms/:farm/controllers", s.listControllers)
	authed(post, "/farms/:farm/controllers", s.createController)
	authed(get, "/controllers/:id", s.getController)
	authed(patch, "/controllers/:id", s.updateController)
	authed(del, "/controllers/:id", s.deleteController)
	authed(post, "/controllers/:id/secret", s.rotateControllerSecret)

	// valves.go
	authed(get, "/farms/:farm/valves", s.listValves)
	authed(post, "/controllers/:id/valves", s.createValve)
	authed(get, "/valves/:valve", s.getValve)
	authed(patch, "/valves/:valve", s.updateValve)
	authed(del, "/valves/:valve", s.deleteValve)
	authed(post, "/valves/:valve/open", s.openValve)
	authed(post, "/valves/:valve/stop", s.stopValve)

	// runs.go
	authed(get, "/farms/:farm/runs", s.listRuns)
	authed(get, "/runs/:id", s.getRun)

	// interlocks.go, emergency_stop.go, overrides.go, flow_meters.go
	authed(get, "/farms/:farm/interlocks", s.farmInterlocks)
	authed(get, "/farms/:farm/run-queue", s.runQueue)
	authed(post, "/farms/:farm/emergency-stop", s.stopFarm)
	authed(post, "/farms/:farm/emergency-stop/release", s.releaseFarm)
	authed(get, "/farms/:farm/emergency-stops", s.listEmergencyStops)
	authed(get, "/farms/:farm/overrides", s.listOverrides)
	authed(post, "/zones/:zone/overrides", s.createOverride)
	authed(del, "/overrides/:id", s.cancelOverride)
	authed(get, "/farms/:farm/flow-meters", s.listFlowMeters)
	authed(post, "/farms/:farm/flow-meters", s.createFlowMeter)
	authed(del, "/flow-meters/:id", s.deleteFlowMeter)

	// rules.go, dry_run.go, backtest.go
	authed(get, "/zones/:zone/rules", s.listRules)
	authed(post, "/zones/:zone/rules", s.createRule)
	authed(get, "/farms/:farm/rules", s.listFarmRules)
	authed(post, "/farms/:farm/rules", s.createFarmRule)
	authed(get, "/rules/:id", s.getRule)
	authed(patch, "/rules/:id", s.updateRule)
	authed(del, "/rules/:id", s.deleteRule)
	authed(post, "/rules/:id/dry-run", s.dryRunRule)
	authed(post, "/zones/:zone/rules/dry-run", s.dryRunZoneRule)
	authed(post, "/farms/:farm/rules/dry-run", s.dryRunFarmRule)
	authed(post, "/rules/:id/backtest", s.backtestStoredRule)
	authed(post, "/zones/:zone/rules/backtest", s.backtestZoneRule)

	// schedules.go, backtest.go
	authed(get, "/zones/:zone/schedules", s.listSchedules)
	authed(post, "/zones/:zone/schedules", s.createSchedule)
	authed(get, "/schedules/:id", s.getSchedule)
	authed(patch, "/schedules/:id", s.updateSchedule)
	authed(del, "/schedules/:id", s.deleteSchedule)
	authed(post, "/schedules/:id/backtest", s.backtestStoredSchedule)
	authed(post, "/zones/:zone/schedules/backtest", s.backtestZoneSchedule)

	// decisions.go, weather.go, water_balance.go, catalog.go
	authed(get, "/farms/:farm/decisions", s.listDecisions)
	authed(get, "/farms/:farm/et0", s.farmET0)
	authed(get, "/farms/:farm/et0/hourly", s.farmET0Hourly)
	authed(get, "/farms/:farm/weather-settings", s.getWeatherSettings)
	authed(put, "/farms/:farm/weather-settings", s.putWeatherSettings)
	authed(put, "/farms/:farm/forecast", s.putForecast)
	authed(get, "/zones/:zone/water-balance", s.zoneWaterBalance)
	authed(get, "/crops", s.listCrops)
	authed(get, "/soils", s.listSoils)
	authed(get, "/rule-language", s.ruleLanguage)

	// alerts.go
	authed(get, "/alerts", s.listAlerts)
	authed(post, "/alerts/:id/ack", s.ackAlert)

	// devices.go, pending_devices.go, rejected_messages.go, device_profiles.go, node_health.go
	authed(get, "/metrics-catalog", s.metricsCatalog)
	authed(get, "/pending-devices", s.pendingDevices)
	authed(post, "/pending-devices/:id/claim", s.claimPendingDevice)
	authed(get, "/rejected-messages", s.rejectedMessages)
	authed(get, "/rejected-messages/reasons", s.rejectionReasons)
	authed(get, "/device-profiles", s.listDeviceProfiles)
	authed(get, "/device-profiles/:profile", s.getDeviceProfile)
	authed(http.MethodPut, "/device-profiles/:profile", s.putDeviceProfile)
	authed(del, "/device-profiles/:profile", s.deleteDeviceProfile)
	authed(get, "/farms/:farm/node-health", s.farmNodeHealth)

	// audit.go
	authed(get, "/audit", s.listAudit)
}
