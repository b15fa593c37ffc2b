package fieldnodes_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
)

func TestNodeCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s := f.store
	depth := 0.3
	n, err := s.CreateNode(ctx, fieldnodes.Node{
		UID: "soil-01", FarmID: f.farmID, ZoneID: &f.zoneA, Name: " Probe 1 ", DevEUI: "00:24:BE:FF:FE:80:4F:F1",
		Location: geo.NewPoint(46.631, 39.091), DepthM: &depth,
	})
	must(t, err)
	if n.ID == 0 || n.Name != "Probe 1" || n.Profile != "native" || n.ExpectedIntervalS != 900 || n.DevEUI != "0024befffe804ff1" {
		t.Errorf("created %+v", n)
	}
	got, err := s.Node(ctx, n.ID)
	must(t, err)
	if got.UID != "soil-01" || *got.ZoneID != f.zoneA || got.Location == nil || got.Location.X() != 46.631 || *got.DepthM != 0.3 || got.Latest == nil {
		t.Errorf("read back %+v", got)
	}
	if byUID, err := s.NodeByUID(ctx, "soil-01"); err != nil || byUID.ID != n.ID {
		t.Errorf("NodeByUID = %+v, %v", byUID, err)
	}

	// Refusals.
	var ve *fieldnodes.ValidationError
	if _, err := s.CreateNode(ctx, fieldnodes.Node{UID: "soil-01", FarmID: f.farmID}); !errors.Is(err, fieldnodes.ErrConflict) {
		t.Errorf("duplicate uid: %v", err)
	}
	if _, err := s.CreateNode(ctx, fieldnodes.Node{UID: "soil-02", FarmID: f.farmID, DevEUI: "0024befffe804ff1"}); !errors.Is(err, fieldnodes.ErrConflict) {
		t.Errorf("duplicate dev_eui: %v", err)
	}
	for name, bad := range map[string]fieldnodes.Node{
		"uid":      {UID: "soil 01", FarmID: f.farmID},
		"farm_id":  {UID: "x1", FarmID: 999999},
		"zone_id":  {UID: "x2", FarmID: f.other, ZoneID: &f.zoneA},
		"dev_eui":  {UID: "x3", FarmID: f.farmID, DevEUI: "12345"},
		"location": {UID: "x4", FarmID: f.farmID, Location: geo.NewPoint(39.09, 146.63)},
	} {
		if _, err := s.CreateNode(ctx, bad); !errors.As(err, &ve) || ve.Field != name {
			t.Errorf("%s: err = %v, want a ValidationError on %s", name, err, name)
		}
	}

	// Update.
	n.Name = "Probe 1 (moved)"
	n.ZoneID = &f.zoneB
	n.Location = nil
	up, err := s.UpdateNode(ctx, n)
	must(t, err)
	if up.Name != "Probe 1 (moved)" || *up.ZoneID != f.zoneB || up.Location != nil {
		t.Errorf("updated %+v", up)
	}
	n.UID = "renamed"
	if _, err := s.UpdateNode(ctx, n); !errors.As(err, &ve) || ve.Field != "uid" {
		t.Errorf("uid change: %v", err)
	}
	n.UID = "soil-01"
	n.FarmID = f.other
	if _, err := s.UpdateNode(ctx, n); !errors.As(err, &ve) || ve.Field != "zone_id" {
		t.Errorf("zone of another farm: %v", err)
	}
	if _, err := s.UpdateNode(ctx, fieldnodes.Node{ID: 424242, UID: "nope", FarmID: f.farmID}); !errors.Is(err, fieldnodes.ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}

	second := f.node(t, "soil-02", 0)
	list, err := s.Nodes(ctx, f.farmID)
	must(t, err)
	if len(list) != 2 || list[0].ID != n.ID || list[1].ID != second {
		t.Errorf("Nodes = %+v", list)
	}

	must(t, s.DeleteNode(ctx, n.ID))
	if _, err := s.Node(ctx, n.ID); !errors.Is(err, fieldnodes.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.DeleteNode(ctx, n.ID); !errors.Is(err, fieldnodes.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s := f.store
	f.node(t, "soil-01", 0)
	secret, err := s.NewSecret(ctx, "soil-01", fieldnodes.KindNode)
	must(t, err)
	if len(secret) < 32 {
		t.Errorf("secret %q is short", secret)
	}
	var stored string
	must(t, f.db.QueryRow(ctx, `SELECT secret_hash FROM device_secrets WHERE uid = 'soil-01'`).Scan(&stored))
	if !strings.HasPrefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(stored, secret) {
		t.Errorf("stored hash %q", stored)
	}
	if kind, err := s.Authenticate(ctx, "soil-01", secret); err != nil || kind != fieldnodes.KindNode {
		t.Errorf("Authenticate = %q, %v", kind, err)
	}
	for _, c := range [][2]string{{"soil-01", secret + "x"}, {"soil-01", ""}, {"nobody", secret}, {"bad uid", secret}} {
		if _, err := s.Authenticate(ctx, c[0], c[1]); !errors.Is(err, fieldnodes.ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrBadCredentials", c[0], c[1], err)
		}
	}

	// A success is cached: it survives the row going away (until the TTL)...
	_, err = f.db.Exec(ctx, `UPDATE device_secrets SET secret_hash = 'gone' WHERE uid = 'soil-01'`)
	must(t, err)
	if kind, err := s.Authenticate(ctx, "soil-01", secret); err != nil || kind != fieldnodes.KindNode {
		t.Errorf("cached Authenticate = %q, %v", kind, err)
	}
	// ...but a new secret replaces it at once, and a failure is never cached as good.
	fresh, err := s.NewSecret(ctx, "soil-01", fieldnodes.KindNode)
	must(t, err)
	if _, err := s.Authenticate(ctx, "soil-01", secret); !errors.Is(err, fieldnodes.ErrBadCredentials) {
		t.Errorf("old secret after rotation: %v", err)
	}
	if _, err := s.Authenticate(ctx, "soil-01", secret); !errors.Is(err, fieldnodes.ErrBadCredentials) {
		t.Errorf("old secret, second try: %v", err)
	}
	if _, err := s.Authenticate(ctx, "soil-01", fresh); err != nil {
		t.Errorf("new secret: %v", err)
	}

	if _, err := s.NewSecret(ctx, "soil-01", fieldnodes.KindController); !errors.Is(err, fieldnodes.ErrConflict) {
		t.Errorf("kind change: %v", err)
	}
	cs, err := s.NewSecret(ctx, "valves-1", fieldnodes.KindController)
	must(t, err)
	if kind, err := s.Authenticate(ctx, "valves-1", cs); err != nil || kind != fieldnodes.KindController {
		t.Errorf("controller Authenticate = %q, %v", kind, err)
	}
}

func TestInsertReadings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s := f.store
	a := f.node(t, "a", f.zoneA)
	b := f.node(t, "b", f.zoneA)
	t0 := time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)
	batch := []fieldnodes.Reading{
		{NodeID: a, Metric: "soil_vwc", TS: t0, Value: 0.21},
		{NodeID: a, Metric: "soil_vwc", TS: t0.Add(15 * time.Minute), Value: 0.22},
		{NodeID: a, Metric: "battery_v", TS: t0, Value: 3.6},
		{NodeID: a, Metric: "rssi_dbm", TS: t0, Value: -71},
		{NodeID: b, Metric: "soil_vwc", TS: t0, Value: 0.3},
		{NodeID: b, Metric: "soil_vwc", TS: t0, Value: 0.3}, // duplicate inside the batch
		{NodeID: b, Metric: "made_up_metric", TS: t0, Value: 7},
		{NodeID: 987654, Metric: "soil_vwc", TS: t0, Value: 1}, // no such node
	}
	n, err := s.InsertReadings(ctx, batch)
	must(t, err)
	if n != 6 {
		t.Errorf("inserted %d, want 6", n)
	}
	// The same batch again: nothing new.
	if n, err := s.InsertReadings(ctx, batch); err != nil || n != 0 {
		t.Errorf("again: inserted %d, %v; want 0", n, err)
	}
	var rows int
	must(t, f.db.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&rows))
	if rows != 6 {
		t.Errorf("%d rows in readings, want 6", rows)
	}

	node, err := s.Node(ctx, a)
	must(t, err)
	if node.LastSeenAt == nil || !node.LastSeenAt.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("last_seen_at = %v", node.LastSeenAt)
	}
	if node.BatteryV == nil || *node.BatteryV != 3.6 || node.RSSIDBm == nil || *node.RSSIDBm != -71 {
		t.Errorf("health %v %v", node.BatteryV, node.RSSIDBm)
	}
	if lv := node.Latest["soil_vwc"]; lv.Value != 0.22 || !lv.TS.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("latest soil_vwc = %+v", lv)
	}

	// An older reading arriving late is stored but moves neither latest nor health.
	_, err = s.InsertReadings(ctx, []fieldnodes.Reading{
		{NodeID: a, Metric: "soil_vwc", TS: t0.Add(-time.Hour), Value: 0.5},
		{NodeID: a, Metric: "battery_v", TS: t0.Add(-time.Hour), Value: 2.9},
	})
	must(t, err)
	node, err = s.Node(ctx, a)
	must(t, err)
	if node.Latest["soil_vwc"].Value != 0.22 || *node.BatteryV != 3.6 || !node.LastSeenAt.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("late reading moved latest/health: %+v %v %v", node.Latest["soil_vwc"], *node.BatteryV, node.LastSeenAt)
	}
	// A newer battery reading does.
	_, err = s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: a, Metric: "battery_v", TS: t0.Add(time.Hour), Value: 3.5}})
	must(t, err)
	node, err = s.Node(ctx, a)
	must(t, err)
	if *node.BatteryV != 3.5 || !node.LastSeenAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("newer battery: %v, last seen %v", *node.BatteryV, node.LastSeenAt)
	}

	metrics, err := s.Metrics(ctx)
	must(t, err)
	var made *fieldnodes.Metric
	for i := range metrics {
		if metrics[i].Name == "made_up_metric" {
			made = &metrics[i]
		}
	}
	if made == nil || made.Known || metrics[0].Known != true || metrics[len(metrics)-1].Name != "made_up_metric" {
		t.Errorf("catalogue: %+v", metrics)
	}

	var ve *fieldnodes.ValidationError
	if _, err := s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: a, Metric: "Bad Name", TS: t0, Value: 1}}); !errors.As(err, &ve) {
		t.Errorf("bad metric name: %v", err)
	}
	if _, err := s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: a, Metric: "soil_vwc", TS: t0, Value: math.NaN()}}); !errors.As(err, &ve) {
		t.Errorf("NaN: %v", err)
	}
}

func TestUnknownMetricsAreCapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: f.db, MaxUnknownMetrics: 2})
	must(t, err)
	a := f.node(t, "a", 0)
	t0 := time.Now()
	_, err = s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: a, Metric: "x1", TS: t0, Value: 1}, {NodeID: a, Metric: "x2", TS: t0, Value: 1}})
	must(t, err)
	var ve *fieldnodes.ValidationError
	if _, err := s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: a, Metric: "x3", TS: t0, Value: 1}}); !errors.As(err, &ve) {
		t.Errorf("third unknown metric: %v", err)
	}
	if _, err := s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: a, Metric: "x1", TS: t0.Add(time.Second), Value: 1}, {NodeID: a, Metric: "soil_vwc", TS: t0, Value: 1}}); err != nil {
		t.Errorf("existing names must still work: %v", err)
	}
}

func TestReadingsDownsampled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s := f.store
	a := f.node(t, "a", 0)
	from := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var batch []fieldnodes.Reading
	for i := 0; i < 3*96; i++ { // three days at 15 minutes, value = index
		batch = append(batch, fieldnodes.Reading{NodeID: a, Metric: "soil_temp_c", TS: from.Add(time.Duration(i) * 15 * time.Minute), Value: float64(i)})
	}
	_, err := s.InsertReadings(ctx, batch)
	must(t, err)

	series, err := s.Readings(ctx, a, "soil_temp_c", from, from.Add(72*time.Hour), 3)
	must(t, err)
	if series.Bucket != 24*time.Hour || len(series.Points) != 3 || series.Unit != "°C" {
		t.Fatalf("series: bucket %v, %d points, unit %q", series.Bucket, len(series.Points), series.Unit)
	}
	day2 := series.Points[1]
	if !day2.TS.Equal(from.Add(24*time.Hour)) || day2.N != 96 || day2.Min != 96 || day2.Max != 191 || day2.Mean != 143.5 {
		t.Errorf("second day: %+v", day2)
	}
	series, err = s.Readings(ctx, a, "soil_temp_c", from, from.Add(72*time.Hour), 500)
	must(t, err)
	if len(series.Points) != 288 || series.Points[5].Mean != 5 {
		t.Errorf("fine series: %d points, %+v", len(series.Points), series.Points[5])
	}
	series, err = s.Readings(ctx, a, "no_such_metric", from, from.Add(time.Hour), 0)
	if err != nil || len(series.Points) != 0 {
		t.Errorf("unknown metric: %+v, %v", series, err)
	}
	var ve *fieldnodes.ValidationError
	if _, err := s.Readings(ctx, a, "soil_temp_c", from, from, 10); !errors.As(err, &ve) {
		t.Errorf("empty range: %v", err)
	}
}

func TestLatestAndZoneAggregates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s := f.store
	a := f.node(t, "a", f.zoneA)
	b := f.node(t, "b", f.zoneA)
	c := f.node(t, "c", 0)
	now := time.Now().UTC().Truncate(time.Second)
	_, err := s.InsertReadings(ctx, []fieldnodes.Reading{
		{NodeID: a, Metric: "soil_vwc", TS: now.Add(-3 * time.Hour), Value: 0.50}, // outside the window
		{NodeID: a, Metric: "soil_vwc", TS: now.Add(-50 * time.Minute), Value: 0.10},
		{NodeID: a, Metric: "soil_vwc", TS: now.Add(-20 * time.Minute), Value: 0.20},
		{NodeID: b, Metric: "soil_vwc", TS: now.Add(-10 * time.Minute), Value: 0.30},
		{NodeID: b, Metric: "air_temp_c", TS: now.Add(-10 * time.Minute), Value: 25},
		{NodeID: c, Metric: "soil_vwc", TS: now.Add(-5 * time.Minute), Value: 0.90},
	})
	must(t, err)
	since, until := now.Add(-time.Hour), now.Add(time.Second)
	farmAggregate := func(metric, agg string, since, until time.Time) (fieldnodes.Aggregate, error) {
		m, err := s.FarmAggregates(ctx, []int64{f.farmID}, metric, agg, since, until)
		return m[f.farmID], err
	}
	zoneAggregate := func(zone int64, metric, agg string, since time.Time) (float64, int, error) {
		m, err := s.ZoneAggregates(ctx, []int64{zone}, metric, agg, since, until)
		return m[zone].Value, m[zone].N, err
	}
	for agg, want := range map[string][2]float64{
		"mean": {0.2, 3}, "min": {0.1, 3}, "max": {0.3, 3}, "last": {0.3, 2}, // last: n is nodes
		"trend": {0.2, 3}, // a's +0.1 in 30 min; b's one reading has no slope and does not tilt a's
	} {
		v, n, err := zoneAggregate(f.zoneA, "soil_vwc", agg, since)
		if err != nil || math.Abs(v-want[0]) > 1e-9 || n != int(want[1]) {
			t.Errorf("%s = %v (n=%d), %v; want %v (n=%v)", agg, v, n, err, want[0], want[1])
		}
	}
	if v, n, err := zoneAggregate(f.zoneB, "soil_vwc", "mean", since); err != nil || n != 0 || v != 0 {
		t.Errorf("empty zone: %v %d %v", v, n, err)
	}
	// Several zones in one query: each its own, as one zone alone gives it; one without data absent.
	d := f.node(t, "d", f.zoneB)
	_, err = s.InsertReadings(ctx, []fieldnodes.Reading{
		{NodeID: d, Metric: "soil_vwc", TS: now.Add(-40 * time.Minute), Value: 0.40},
		{NodeID: d, Metric: "soil_vwc", TS: now.Add(-30 * time.Minute), Value: 0.60},
	})
	must(t, err)
	var empty int64
	must(t, f.db.QueryRow(ctx, `INSERT INTO zones (farm_id, name, geom) VALUES ($1, 'C', `+zoneGeom+`) RETURNING id`, f.farmID).Scan(&empty))
	for agg, want := range map[string]map[int64]fieldnodes.Aggregate{
		"mean":  {f.zoneA: {0.2, 3}, f.zoneB: {0.5, 2}},
		"min":   {f.zoneA: {0.1, 3}, f.zoneB: {0.4, 2}},
		"max":   {f.zoneA: {0.3, 3}, f.zoneB: {0.6, 2}},
		"last":  {f.zoneA: {0.3, 2}, f.zoneB: {0.6, 1}},
		"trend": {f.zoneA: {0.2, 3}, f.zoneB: {1.2, 2}}, // B: +0.2 in 10 min
	} {
		got, err := s.ZoneAggregates(ctx, []int64{f.zoneA, f.zoneB, empty}, "soil_vwc", agg, since, until)
		if err != nil || len(got) != 2 {
			t.Errorf("%s of three zones = %v, %v; want two zones %v", agg, got, err, want)
			continue
		}
		for z, w := range want {
			if g := got[z]; math.Abs(g.Value-w.Value) > 1e-9 || g.N != w.N {
				t.Errorf("%s of zone %d = %+v, want %+v", agg, z, g, w)
			}
		}
	}
	must(t, f.db.QueryRow(ctx, `DELETE FROM nodes WHERE id = $1 RETURNING id`, d).Scan(&d))
	if _, n, err := zoneAggregate(f.zoneA, "soil_vwc", "last", now.Add(-time.Minute)); err != nil || n != 0 {
		t.Errorf("last with nothing recent: n=%d %v", n, err)
	}
	// A farm's newest reading is any node's, zoned or not, read from the readings.
	for _, c := range []struct {
		since       time.Time
		want, nodes float64
	}{{since, 0.90, 3}, {now.Add(-7 * time.Minute), 0.90, 1}, {now.Add(-15 * time.Minute), 0.90, 2}, {now.Add(-time.Minute), 0, 0}} {
		if a, err := farmAggregate("soil_vwc", "last", c.since, until); err != nil || a.Value != c.want || a.N != int(c.nodes) {
			t.Errorf("farm last since %v = %+v, %v; want %v (%v nodes)", now.Sub(c.since), a, err, c.want, c.nodes)
		}
	}
	// The farm's mean and trend are over every node's readings, zoned or not; the trend is
	// within each node: b's 0.30 and c's 0.90 five minutes later are two probes, not a rise.
	if a, err := farmAggregate("soil_vwc", "mean", now.Add(-15*time.Minute), until); err != nil || math.Abs(a.Value-0.6) > 1e-9 || a.N != 2 {
		t.Errorf("farm mean of the last 15 min = %+v, %v; want 0.6 over 2", a, err)
	}
	if a, err := farmAggregate("soil_vwc", "trend", now.Add(-15*time.Minute), until); err != nil || !math.IsNaN(a.Value) || a.N != 2 {
		t.Errorf("farm trend of two nodes' single readings = %+v, %v; want NaN over 2", a, err)
	}
	if a, err := farmAggregate("soil_vwc", "trend", since, until); err != nil || math.Abs(a.Value-0.2) > 1e-9 || a.N != 4 {
		t.Errorf("farm trend of the hour = %+v, %v; want a's 0.2/h over 4", a, err)
	}
	if a, err := farmAggregate("air_temp_c", "trend", since, until); err != nil || !math.IsNaN(a.Value) || a.N != 1 {
		t.Errorf("trend of one reading = %+v, %v; want NaN over 1", a, err)
	}
	if _, n, err := zoneAggregate(f.zoneA, "never_seen", "mean", since); err != nil || n != 0 {
		t.Errorf("unknown metric: n=%d %v", n, err)
	}
	var ve *fieldnodes.ValidationError
	if _, _, err := zoneAggregate(f.zoneA, "soil_vwc", "median", since); !errors.As(err, &ve) {
		t.Errorf("bad aggregate: %v", err)
	}

	latest, err := s.Latest(ctx, f.farmID)
	must(t, err)
	if len(latest) != 3 || latest[a]["soil_vwc"].Value != 0.20 || latest[b]["air_temp_c"].Value != 25 || !latest[c]["soil_vwc"].TS.Equal(now.Add(-5*time.Minute)) {
		t.Errorf("Latest = %+v", latest)
	}
	if other, err := s.Latest(ctx, f.other); err != nil || len(other) != 0 {
		t.Errorf("other farm: %v %v", other, err)
	}

	// A reading stamped after until (a device's clock running fast) is not counted.
	_, err = s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: c, Metric: "soil_vwc", TS: now.Add(3 * time.Hour), Value: 5}})
	must(t, err)
	if a, err := farmAggregate("soil_vwc", "max", since, until); err != nil || a.Value != 0.9 || a.N != 4 {
		t.Errorf("farm max until now = %+v, %v; want 0.9 over 4, without the reading from later", a, err)
	}
	if a, err := farmAggregate("soil_vwc", "last", since, until); err != nil || a.Value != 0.9 {
		t.Errorf("farm last until now = %+v, %v; want c's 0.9 of five minutes ago", a, err)
	}
	if a, err := farmAggregate("soil_vwc", "trend", since, until); err != nil || math.Abs(a.Value-0.2) > 1e-9 {
		t.Errorf("farm trend until now = %+v, %v; want 0.2/h", a, err)
	}
}

func TestPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	now := time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)
	s, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: f.db, Now: func() time.Time { return now }})
	must(t, err)
	a := f.node(t, "a", 0)
	// Before any partition exists, readings land in the DEFAULT partition.
	late := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	_, err = s.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: a, Metric: "soil_vwc", TS: now, Value: 0.2}, {NodeID: a, Metric: "soil_vwc", TS: late, Value: 0.4}})
	must(t, err)

	must(t, s.Start(ctx))
	t.Cleanup(s.Stop)
	partitions := func() string {
		var names string
		must(t, f.db.QueryRow(ctx, `SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i
			JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'readings'::regclass`).Scan(&names))
		return names
	}
	if got, want := partitions(), "readings_default,readings_p2026_06,readings_p2026_07,readings_p2026_08,readings_p2026_09,readings_p2026_10"; got != want {
		t.Errorf("partitions after Start = %s, want %s", got, want)
	}
	var where string
	must(t, f.db.QueryRow(ctx, `SELECT tableoid::regclass::text FROM readings WHERE ts = $1`, now).Scan(&where))
	if where != "readings_p2026_07" {
		t.Errorf("July reading is in %s", where)
	}

	// November's reading sits in DEFAULT; creating November's partition moves it there.
	must(t, s.EnsurePartitions(ctx, late, late))
	must(t, f.db.QueryRow(ctx, `SELECT tableoid::regclass::text FROM readings WHERE ts = $1`, late).Scan(&where))
	if where != "readings_p2026_11" {
		t.Errorf("November reading is in %s", where)
	}
	series, err := s.Readings(ctx, a, "soil_vwc", now.Add(-time.Hour), late.Add(time.Hour), 10)
	must(t, err)
	if len(series.Points) != 2 {
		t.Errorf("readings across partitions: %+v", series.Points)
	}
	// Idempotent, also when run again by another process.
	other, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: f.db})
	must(t, err)
	must(t, other.EnsurePartitions(ctx, now, late))
}

func TestPendingAndRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s := f.store
	t0 := time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)
	for i := 0; i < 25; i++ {
		must(t, s.RecordPending(ctx, fieldnodes.SourceMQTT, "stranger", "aghali/nodes/stranger/up", []byte(fmt.Sprintf(`{"i":%d}`, i)), t0.Add(time.Duration(i)*time.Minute)))
	}
	must(t, s.RecordPending(ctx, fieldnodes.SourceMQTT, "other", "aghali/nodes/other/up", []byte(`{}`), t0))
	pend, err := s.PendingDevices(ctx)
	must(t, err)
	if len(pend) != 2 || pend[0].UID != "stranger" || pend[0].MessageCount != 25 || len(pend[0].Messages) != 20 ||
		string(pend[0].Messages[0].Payload) != `{"i":24}` || string(pend[0].Messages[19].Payload) != `{"i":5}` ||
		!pend[0].FirstSeenAt.Equal(t0) || !pend[0].LastSeenAt.Equal(t0.Add(24*time.Minute)) {
		t.Errorf("pending = %+v", pend)
	}
	// Registering it takes it off the list.
	f.node(t, "stranger", 0)
	pend, err = s.PendingDevices(ctx)
	must(t, err)
	if len(pend) != 1 || pend[0].UID != "other" || len(pend[0].Messages) != 1 {
		t.Errorf("pending after registering = %+v", pend)
	}

	must(t, s.Reject(ctx, "aghali/nodes/x/up", []byte("{oops"), "malformed", "not JSON"))
	must(t, s.Reject(ctx, "aghali/nodes/y/up", nil, "empty", ""))
	rej, err := s.Rejected(ctx, 1)
	must(t, err)
	if len(rej) != 1 || rej[0].Topic != "aghali/nodes/y/up" || rej[0].Reason != "empty" || rej[0].Payload == nil {
		t.Errorf("Rejected(1) = %+v", rej)
	}
	rej, err = s.Rejected(ctx, 0)
	must(t, err)
	if len(rej) != 2 || string(rej[1].Payload) != "{oops" || rej[1].Detail != "not JSON" {
		t.Errorf("Rejected = %+v", rej)
	}
}
