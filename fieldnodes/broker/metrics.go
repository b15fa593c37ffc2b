package broker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	logins   *prometheus.CounterVec
	refusals *prometheus.CounterVec
	denied   *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	// handedOff counts publishes taken by the Handoff (acknowledged once it commits them).
	handedOff prometheus.Counter
	// acksWritten counts PUBACKs written for them, acksLost those that could not be written
	// (the client had gone; it publishes them again).
	acksWritten prometheus.Counter
	acksLost    prometheus.Counter
}

func newMetrics() metrics {
	return metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aghali_mqtt_broker_logins_total", Help: "MQTT logins to the embedded broker by result (ok, refused).",
		}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aghali_mqtt_broker_login_refusals_total", Help: "Refused MQTT logins by reason.",
		}, []string{"reason"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aghali_mqtt_broker_acl_denied_total", Help: "Publishes (write) and subscriptions or deliveries (read) refused by the topic rules.",
		}, []string{"action"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aghali_mqtt_broker_dropped_total", Help: "Messages the embedded broker had to drop, by cause.",
		}, []string{"cause"}),
		handedOff: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aghali_mqtt_broker_handed_off_total", Help: "Publishes handed straight to the ingest (acknowledged once committed).",
		}),
		acksWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aghali_mqtt_broker_commit_acks_total", Help: "PUBACKs written for handed-off publishes after their commit.",
		}),
		acksLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aghali_mqtt_broker_commit_acks_lost_total", Help: "PUBACKs for handed-off publishes that could not be written (the client had gone; it publishes again).",
		}),
	}
}

func (m metrics) register(r prometheus.Registerer, clients func() float64) error {
	for _, c := range []prometheus.Collector{m.logins, m.refusals, m.denied, m.dropped, m.handedOff, m.acksWritten, m.acksLost,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "aghali_mqtt_broker_clients_connected", Help: "Clients connected to the embedded broker.",
		}, clients),
	} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
