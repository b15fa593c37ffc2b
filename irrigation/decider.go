package irrigation

import (
	"errors"
)

// DeciderConfig tunes a Decider's parts; zero values mean their defaults.
type DeciderConfig struct {
	Engine  EngineConfig // Weather and Balance are filled in by NewDecider
	Weather WeatherConfig
	Balance BalanceConfig
}

// Decider is what decides when and how much to water, beyond the store: the rule engine, the
// weather (ET0 per farm and day), the zones' water balance, and backtests that replay rules and
// schedules over stored history. The Scheduler uses it for skip conditions, skip rules and the
// water-balance mode; the API for dry runs, backtests, ET0 and balances.
type Decider struct {
	store    *Store
	readings Readings
	Engine   *Engine
	Weather  *Weather
	Balance  *WaterBalance
}

// NewDecider builds the parts on store and readings (package fieldnodes' store).
func NewDecider(store *Store, readings Readings, cfg DeciderConfig) (*Decider, error) {
	if store == nil || readings == nil {
		return nil, errors.New("irrigation: NewDecider needs a store and readings")
	}
	w, err := NewWeather(store, readings, cfg.Weather)
	if err != nil {
		return nil, err
	}
	b, err := NewWaterBalance(store, readings, w, cfg.Balance)
	if err != nil {
		return nil, err
	}
	cfg.Engine.Weather, cfg.Engine.Balance = w, b
	e, err := NewEngine(store, readings, cfg.Engine)
	if err != nil {
		return nil, err
	}
	return &Decider{store: store, readings: readings, Engine: e, Weather: w, Balance: b}, nil
}

func (d *Decider) live() *liveFacts { return newLiveFacts(d.store, d.readings, d.Weather, d.Balance) }
