package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Node health: how each node of a farm is doing (fieldnodes.NodeHealth), for the device-health
// view: last heard against its reporting interval, battery, radio link, open health alerts.

type nodeHealthJSON struct {
	NodeID            int64      `json:"node_id"`
	UID               string     `json:"uid"`
	Name              string     `json:"name"`
	Profile           string     `json:"profile"`
	Status            string     `json:"status"` // ok, late, silent, never_seen
	MissedReports     int        `json:"missed_reports"`
	ExpectedIntervalS int        `json:"expected_interval_s"`
	LastSeenAt        *time.Time `json:"last_seen_at"`
	BatteryV          *float64   `json:"battery_v"`
	BatteryPct        *float64   `json:"battery_pct"`
	BatteryLow        bool       `json:"battery_low"`
	RSSIDBm           *float64   `json:"rssi_dbm"`
	SNRDB             *float64   `json:"snr_db"`
	LinkQuality       *string    `json:"link_quality"` // good, fair, poor; null: unknown
	SpreadingFactor   *int       `json:"spreading_factor"`
	Gateways          *int       `json:"gateways"`
	FCnt              *int64     `json:"f_cnt"`
	FCntResets        int        `json:"f_cnt_resets"`
	LinkMarginDB      *float64   `json:"link_margin_db"`
	SilentAlert       bool       `json:"silent_alert"`
	BatteryAlert      bool       `json:"battery_alert"`
}

// farmNodeHealth: GET /farms/{farm}/node-health (viewer) → the health of every node, by id.
func (s *Server) farmNodeHealth(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	list, err := s.nodes.NodeHealth(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	out := make([]nodeHealthJSON, 0, len(list))
	for _, h := range list {
		j := nodeHealthJSON{NodeID: h.NodeID, UID: h.UID, Name: h.Name, Profile: h.Profile, Status: h.Status,
			MissedReports: h.MissedIntervals, ExpectedIntervalS: h.ExpectedIntervalS, LastSeenAt: utcp(h.LastSeenAt),
			BatteryV: h.BatteryV, BatteryPct: h.BatteryPct, BatteryLow: h.BatteryLow, RSSIDBm: h.RSSIDBm, SNRDB: h.SNRDB,
			SpreadingFactor: h.SpreadingFactor, Gateways: h.Gateways, FCnt: h.FCnt, FCntResets: h.FCntResets,
			LinkMarginDB: h.LinkMarginDB, SilentAlert: h.SilentAlert, BatteryAlert: h.BatteryAlert}
		if h.LinkQuality != "" {
			q := h.LinkQuality
			j.LinkQuality = &q
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}
