package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes"
)

// A node's readings of one metric over time, downsampled to what a chart can show.

const (
	defaultReadingsMetric = "soil_vwc"
	defaultReadingsSpan   = 7 * 24 * time.Hour
	defaultReadingsPoints = fieldnodes.DefaultMaxPoints // 500
	maxReadingsPoints     = 5000
)

type seriesJSON struct {
	NodeID  int64           `json:"node_id"`
	Metric  string          `json:"metric"`
	Unit    string          `json:"unit"`
	From    time.Time       `json:"from"`
	To      time.Time       `json:"to"`
	BucketS float64         `json:"bucket_s"`
	Points  []readingBucket `json:"points"`
}

type readingBucket struct {
	TS    time.Time `json:"ts"` // start of the bucket
	Value float64   `json:"value"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	N     int       `json:"n"`
}

// nodeReadings: GET /nodes/{node}/readings?metric=soil_vwc&from=&to=&points=500. metric defaults
// to soil_vwc; to to now and from to 7 days before to; points (1–5000) to 500. The answer has at
// most points buckets of equal width over [from, to), each the mean, min and max of its
// readings; buckets without readings are left out.
func (s *Server) nodeReadings(c echo.Context) error {
	n, _, err := s.nodeOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	metric := c.QueryParam("metric")
	if metric == "" {
		metric = defaultReadingsMetric
	}
	if !fieldnodes.ValidMetricName(metric) {
		return &ValidationError{Field: "metric", Problem: "not a metric name (lower-case letters, digits and _; see GET /metrics-catalog)"}
	}
	points, err := queryInt(c, "points", defaultReadingsPoints, 1, maxReadingsPoints)
	if err != nil {
		return err
	}
	from, err := queryTime(c, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(c, "to")
	if err != nil {
		return err
	}
	if to.IsZero() {
		to = s.now().UTC().Truncate(time.Second).Add(time.Second) // the reading of this second included
	}
	if from.IsZero() {
		from = to.Add(-defaultReadingsSpan)
	}
	if !to.After(from) {
		return &ValidationError{Field: "to", Problem: "must be after from"}
	}
	series, err := s.nodes.Readings(c.Request().Context(), n.ID, metric, from, to, points)
	if err != nil {
		return err
	}
	out := seriesJSON{NodeID: n.ID, Metric: series.Metric, Unit: series.Unit, From: utc(series.From), To: utc(series.To),
		BucketS: series.Bucket.Seconds(), Points: make([]readingBucket, 0, len(series.Points))}
	for _, p := range series.Points {
		out.Points = append(out.Points, readingBucket{TS: utc(p.TS), Value: p.Mean, Min: p.Min, Max: p.Max, N: p.N})
	}
	return c.JSON(http.StatusOK, out)
}
