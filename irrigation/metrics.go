package irrigation

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// register adds c to reg (nil: nowhere). A collector already registered by an earlier instance
// with the same registry is reused, so building a part twice (tests, restarts) is not an error.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, fmt.Errorf("irrigation: register metrics: %w", err)
	}
	return c, nil
}

type storeMetrics struct {
	runsStarted  *prometheus.CounterVec
	alertsRaised *prometheus.CounterVec
}

func newStoreMetrics(reg prometheus.Registerer) (*storeMetrics, error) {
	var m storeMetrics
	var err error
	if m.runsStarted, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aghali_irrigation_runs_started_total", Help: "Irrigation runs started, by origin.",
	}, []string{"origin"})); err != nil {
		return nil, err
	}
	if m.alertsRaised, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aghali_irrigation_alerts_raised_total", Help: "Alerts opened by irrigation, by kind.",
	}, []string{"kind"})); err != nil {
		return nil, err
	}
	return &m, nil
}

type dispatcherMetrics struct {
	sent       *prometheus.CounterVec
	sendErrors prometheus.Counter
	expired    prometheus.Counter
	latency    prometheus.Histogram
}

func newDispatcherMetrics(reg prometheus.Registerer) (*dispatcherMetrics, error) {
	var m dispatcherMetrics
	var err error
	if m.sent, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aghali_irrigation_commands_sent_total", Help: "Controller commands published (including resends), by action.",
	}, []string{"action"})); err != nil {
		return nil, err
	}
	if m.sendErrors, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aghali_irrigation_command_send_errors_total", Help: "Controller command publishes that failed.",
	})); err != nil {
		return nil, err
	}
	if m.expired, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aghali_irrigation_commands_expired_total", Help: "Controller commands that expired unacknowledged.",
	})); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "aghali_irrigation_command_dispatch_seconds",
		Help:    "From a command being queued to its first publish.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	})); err != nil {
		return nil, err
	}
	return &m, nil
}

type ruleMetrics struct {
	evaluated prometheus.Counter
	fired     prometheus.Counter
}

func newRuleMetrics(reg prometheus.Registerer) (*ruleMetrics, error) {
	var m ruleMetrics
	var err error
	if m.evaluated, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aghali_irrigation_rule_evaluations_total", Help: "Threshold rule evaluations.",
	})); err != nil {
		return nil, err
	}
	if m.fired, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aghali_irrigation_rule_fires_total", Help: "Threshold rules that started a run.",
	})); err != nil {
		return nil, err
	}
	return &m, nil
}

type scheduleMetrics struct {
	fired   prometheus.Counter
	skipped prometheus.Counter
	leader  prometheus.Gauge
}

func newScheduleMetrics(reg prometheus.Registerer) (*scheduleMetrics, error) {
	var m scheduleMetrics
	var err error
	if m.fired, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aghali_irrigation_schedule_fires_total", Help: "Schedule occurrences that started a run.",
	})); err != nil {
		return nil, err
	}
	if m.skipped, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aghali_irrigation_schedule_skips_total", Help: "Schedule occurrences not fired (missed while down, valve busy, no valve).",
	})); err != nil {
		return nil, err
	}
	if m.leader, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aghali_irrigation_scheduler_leader", Help: "1 while this instance holds the scheduler's advisory lock.",
	})); err != nil {
		return nil, err
	}
	return &m, nil
}
