package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation/agronomy"
	"github.com/aghali/aghali/irrigation/rule"
)

// Handlers of the agronomic catalogues a zone and a rule are written against: crops (FAO-56
// Tables 11, 12, 22), soils (Table 19) and the facts and functions of the rule language.

type rangeJSON struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

type cropJSON struct {
	Name      string    `json:"name"`
	Title     string    `json:"title"`
	KcIni     float64   `json:"kc_ini"`
	KcMid     float64   `json:"kc_mid"`
	KcEnd     float64   `json:"kc_end"`
	MaxHeight float64   `json:"max_height_m"`
	Stages    []int     `json:"stages_days"` // initial, development, mid-season, late season
	RootDepth rangeJSON `json:"root_depth_m"`
	P         float64   `json:"p"`
	Source    string    `json:"source"`
}

// listCrops: GET /crops.
func (s *Server) listCrops(c echo.Context) error {
	var out []cropJSON
	for _, cr := range agronomy.Crops() {
		out = append(out, cropJSON{Name: cr.Name, Title: cr.Title, KcIni: cr.KcIni, KcMid: cr.KcMid, KcEnd: cr.KcEnd,
			MaxHeight: cr.MaxHeight, Stages: []int{cr.Stages.Ini, cr.Stages.Dev, cr.Stages.Mid, cr.Stages.Late},
			RootDepth: rangeJSON{cr.RootDepth.Min, cr.RootDepth.Max}, P: cr.P, Source: cr.Source})
	}
	return c.JSON(http.StatusOK, out)
}

type soilJSON struct {
	Name    string    `json:"name"`
	Title   string    `json:"title"`
	ThetaFC rangeJSON `json:"theta_fc"`
	ThetaWP rangeJSON `json:"theta_wp"`
	FC      float64   `json:"theta_fc_mid"`
	WP      float64   `json:"theta_wp_mid"`
}

// listSoils: GET /soils.
func (s *Server) listSoils(c echo.Context) error {
	var out []soilJSON
	for _, so := range agronomy.Soils() {
		out = append(out, soilJSON{Name: so.Name, Title: so.Title, ThetaFC: rangeJSON{so.FieldCapacity.Min, so.FieldCapacity.Max},
			ThetaWP: rangeJSON{so.WiltingPoint.Min, so.WiltingPoint.Max}, FC: so.ThetaFC(), WP: so.ThetaWP()})
	}
	return c.JSON(http.StatusOK, out)
}

type ruleFactJSON struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Group string `json:"group"`
	Unit  string `json:"unit"`
	Doc   string `json:"doc"`
}

// ruleLanguage: GET /rule-language — the named facts and the functions a condition may use.
func (s *Server) ruleLanguage(c echo.Context) error {
	facts := []ruleFactJSON{}
	for _, v := range rule.Vars() {
		facts = append(facts, ruleFactJSON{Name: v.Name, Type: v.Kind.String(), Group: v.Group, Unit: v.Unit, Doc: v.Doc})
	}
	return c.JSON(http.StatusOK, map[string]any{
		"facts": facts,
		"reading_functions": []string{rule.FuncMean, rule.FuncMin, rule.FuncMax, rule.FuncLast, rule.FuncTrend, rule.FuncSum,
			rule.FuncCount},
		"functions":  []string{"min", "max", "abs", "ceil", "floor", "round", "default"},
		"scopes":     []string{rule.ScopeZone, rule.ScopeFarm},
		"max_window": rule.FormatDuration(rule.MaxWindow),
	})
}
