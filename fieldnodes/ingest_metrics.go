package fieldnodes

import "github.com/prometheus/client_golang/prometheus"

type ingestMetrics struct {
	received          *prometheus.CounterVec
	messages          *prometheus.CounterVec
	rejections        *prometheus.CounterVec
	readingsStored    prometheus.Counter
	readingsDuplicate prometheus.Counter
	commitSeconds     prometheus.Histogram
	commitErrors      prometheus.Counter
}

func newIngestMetrics() ingestMetrics {
	return ingestMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aghali_ingest_received_total", Help: "MQTT messages taken from the link, by kind (uplink, controller).",
		}, []string{"kind"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aghali_ingest_messages_total",
			Help: "MQTT messages handled by outcome: stored, copy, ignored, pending (unregistered device), rejected, controller_ack, controller_state, controller_lorawan (a LoRaWAN controller's network-server event), controller_failed, abandoned (left for redelivery).",
		}, []string{"outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aghali_ingest_rejections_total", Help: "Rejected messages by reason.",
		}, []string{"reason"}),
		readingsStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aghali_ingest_readings_stored_total", Help: "Readings committed that were new.",
		}),
		readingsDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aghali_ingest_readings_duplicate_total", Help: "Readings committed that were already stored (redeliveries, repeats).",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "aghali_ingest_batch_commit_seconds",
			Help:    "Time to commit one batch (readings, pending devices and rejections) and acknowledge its messages.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aghali_ingest_commit_errors_total", Help: "Failed commit attempts (each is retried).",
		}),
	}
}

func (m ingestMetrics) register(r prometheus.Registerer, buffered func() float64) error {
	for _, c := range []prometheus.Collector{m.received, m.messages, m.rejections, m.readingsStored, m.readingsDuplicate,
		m.commitSeconds, m.commitErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "aghali_ingest_buffered_messages", Help: "Uplink messages waiting for a batch.",
		}, buffered),
	} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
