package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aghali/aghali/api"
	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/devicesim"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/irrigation/agronomy"
	"github.com/aghali/aghali/irrigation/rule"
)

// demoState is what the demo keeps between runs (next to its database, mode 0600): the logins
// it created and the simulated devices' MQTT secrets, which the database only holds hashed.
type demoState struct {
	Logins []demoLogin     `json:"logins"`
	Fleet  devicesim.Fleet `json:"fleet"`
}

type demoLogin struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
	Farms    string `json:"farms"`
}

func loadDemoState(path string) (demoState, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return demoState{}, false, nil
	}
	if err != nil {
		return demoState{}, false, err
	}
	var st demoState
	if err := json.Unmarshal(b, &st); err != nil {
		return demoState{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return st, true, st.Fleet.Validate()
}

func saveDemoState(path string, st demoState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// seedDemo creates the demo village: organisation "Aghali", three farms with fields, zones,
// water sources, soil probes and weather stations, valve controllers, a threshold rule per zone,
// a frost alert per farm, a morning schedule and water-balance schedules, and three logins
// (admin, agronomist, farmer).
func seedDemo(ctx context.Context, a *app) (demoState, error) {
	var st demoState
	orgID, err := api.CreateOrganisation(ctx, a.pool, "Aghali")
	if err != nil {
		return st, fmt.Errorf("create organisation (if this database already has the demo but its demo.json was lost, remove the data directory to start afresh): %w", err)
	}
	geos := geo.NewStore(a.pool)
	var firstFarm int64
	for fi, f := range demoFarms() {
		farm, err := geos.CreateFarm(ctx, geo.Farm{OrgID: orgID, Name: f.name, Timezone: "Asia/Baku", Location: geo.NewPoint(f.lon, f.lat)})
		if err != nil {
			return st, err
		}
		if fi == 0 {
			firstFarm = farm.ID
		}
		slug := fmt.Sprintf("f%d", fi+1)
		capacity := f.source.capacityM3H
		srcLon, srcLat := f.at(-20, -190)
		src, err := a.irr.CreateWaterSource(ctx, irrigation.WaterSource{FarmID: farm.ID, Name: f.source.name, Kind: f.source.kind,
			CapacityM3H: &capacity, Energy: f.source.energy, Location: geo.NewPoint(round7(srcLon), round7(srcLat))})
		if err != nil {
			return st, err
		}
		ctlLon, ctlLat := f.at(0, -175)
		ctl, secret, err := a.irr.CreateController(ctx, irrigation.Controller{UID: "ctl-" + slug, FarmID: farm.ID,
			Name: f.name + " controller", Location: geo.NewPoint(round7(ctlLon), round7(ctlLat))})
		if err != nil {
			return st, err
		}
		simCtl := devicesim.Controller{UID: ctl.UID, Secret: secret}
		wx, err := a.nodes.CreateNode(ctx, fieldnodes.Node{UID: "wx-" + slug, FarmID: farm.ID, Name: f.name + " weather station",
			Location: geo.NewPoint(f.lon, f.lat), HeightM: ptr(2.0), ExpectedIntervalS: 60})
		if err != nil {
			return st, err
		}
		if secret, err = a.nodes.NewSecret(ctx, wx.UID, "node"); err != nil {
			return st, err
		}
		st.Fleet.Nodes = append(st.Fleet.Nodes, devicesim.Node{UID: wx.UID, Secret: secret, Kind: "weather"})

		channel := 0
		for _, fd := range f.fields {
			field, err := geos.CreateField(ctx, geo.Field{FarmID: farm.ID, Name: fd.name, Crop: fd.crop, Geom: f.fieldPolygon(fd)})
			if err != nil {
				return st, err
			}
			soil, ok := agronomy.SoilByName(fd.soil)
			if !ok {
				return st, fmt.Errorf("demo: soil %q is not in the catalogue", fd.soil)
			}
			fc, wp := soil.ThetaFC(), soil.ThetaWP()
			// Irrigate at half the available water used up (FAO-56's p ≈ 0.5 for most crops).
			threshold := round3(wp + 0.5*(fc-wp))
			for zi := range fd.zones {
				channel++
				name := fd.name
				if fd.zones > 1 {
					name = fmt.Sprintf("%s %c", fd.name, 'A'+zi)
				}
				eff := map[string]float64{"drip": 0.9, "sprinkler": 0.75}[fd.method]
				zone, err := a.irr.CreateZone(ctx, irrigation.Zone{FarmID: farm.ID, FieldID: &field.ID, WaterSourceID: &src.ID,
					Name: name, Geom: f.zonePolygon(fd, zi), Method: fd.method, Crop: fd.crop, Soil: fd.soil,
					RootDepthM: ptr(fd.rootM), ApplicationRateMMH: ptr(fd.rateMMH), Efficiency: &eff, MaxRuntimeS: 2 * 3600})
				if err != nil {
					return st, err
				}
				flow := fd.rateMMH * (fd.w * fd.h / float64(fd.zones)) / 60 // mm/h over the zone's m² → L/min
				valve, err := a.irr.CreateValve(ctx, irrigation.Valve{ControllerID: ctl.ID, Channel: channel, ZoneID: &zone.ID,
					Name: "Valve " + name, Location: f.zoneCentre(fd, zi, 0.08), NominalFlowLPM: ptr(round3(flow))})
				if err != nil {
					return st, err
				}
				probe, err := a.nodes.CreateNode(ctx, fieldnodes.Node{UID: fmt.Sprintf("probe-%s-%d", slug, channel), FarmID: farm.ID,
					ZoneID: &zone.ID, Name: "Soil probe " + name, Location: f.zoneCentre(fd, zi, 0.55), DepthM: ptr(0.3), ExpectedIntervalS: 60})
				if err != nil {
					return st, err
				}
				if secret, err = a.nodes.NewSecret(ctx, probe.UID, "node"); err != nil {
					return st, err
				}
				cond, err := rule.Threshold("soil_vwc", "mean", "<", threshold, 30*time.Minute)
				if err != nil {
					return st, err
				}
				if _, err := a.irr.CreateRule(ctx, irrigation.Rule{ZoneID: &zone.ID, Name: "Dry soil", Condition: cond,
					DurationS: 20 * 60, CooldownS: 3600, Enabled: true}); err != nil {
					return st, err
				}
				// Start the village in varied states: one zone already dry, the rest between
				// the threshold and field capacity.
				zoneIndex := len(st.Fleet.Zones)
				start := threshold + (fc-threshold)*float64((zoneIndex*37)%100)/100
				if zoneIndex == 0 {
					start = threshold - 0.01
				}
				st.Fleet.Zones = append(st.Fleet.Zones, devicesim.Zone{Name: name, VWC: round3(start), FieldCapacity: fc,
					WiltingPoint: wp, RootDepthM: fd.rootM, RateMMH: fd.rateMMH, DailyETmm: 6.5})
				st.Fleet.Nodes = append(st.Fleet.Nodes, devicesim.Node{UID: probe.UID, Secret: secret, Kind: "soil", Zone: zoneIndex})
				simCtl.Valves = append(simCtl.Valves, devicesim.Valve{Channel: valve.Channel, Zone: zoneIndex, FlowLPM: *valve.NominalFlowLPM})
				if fd.crop == "tomato" && zi == 0 {
					if _, err := a.irr.CreateSchedule(ctx, irrigation.Schedule{ZoneID: zone.ID, Name: "Early morning",
						Cron: "30 5 * * *", DurationS: 15 * 60, Enabled: true}); err != nil {
						return st, err
					}
				} else if fd.method == "drip" && zi == 0 {
					// Water what the root zone lacks (FAO-56 balance from the station's ET0), at
					// dawn, in cycles, not after rain.
					if _, err := a.irr.CreateSchedule(ctx, irrigation.Schedule{ZoneID: zone.ID, Name: "By the water balance",
						Cron: "0 5 * * *", Mode: irrigation.ModeWaterBalance, CycleS: 3600, SoakS: 1800, SkipRainMM: ptr(8.0),
						Enabled: true}); err != nil {
						return st, err
					}
				}
			}
		}
		st.Fleet.Controllers = append(st.Fleet.Controllers, simCtl)
		if _, err := a.irr.CreateRule(ctx, irrigation.Rule{FarmID: farm.ID, Name: "Frost risk", Action: "alert",
			Severity: irrigation.SeverityCritical, Condition: `min("air_temp_c", "1h", "farm") <= 1`,
			ResetCondition: `min("air_temp_c", "1h", "farm") >= 3`, Enabled: true}); err != nil {
			return st, err
		}
	}
	for _, u := range []struct {
		email, name string
		role        api.Role
		farms       []int64
		which       string
	}{
		{"admin@aghali.local", "Village control centre", api.RoleAdmin, nil, "all farms"},
		{"agronomist@aghali.local", "Aysel Agronomist", api.RoleAgronomist, nil, "all farms"},
		{"farmer@aghali.local", "Elvin Farmer", api.RoleFarmer, []int64{firstFarm}, demoFarms()[0].name},
	} {
		pw := newPassword()
		if _, err := api.CreateUser(ctx, a.pool, api.UserInput{Email: u.email, Name: u.name, Password: pw, Locale: "az",
			OrgID: orgID, Role: u.role, FarmIDs: u.farms}); err != nil {
			return st, err
		}
		st.Logins = append(st.Logins, demoLogin{Email: u.email, Password: pw, Role: string(u.role), Farms: u.which})
	}
	return st, st.Fleet.Validate()
}

// newPassword is 16 random characters, easy to type on a phone.
func newPassword() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func ptr[T any](v T) *T { return &v }

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
