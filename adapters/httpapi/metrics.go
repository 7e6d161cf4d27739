package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cxledger/cxledger/projections"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the server's Prometheus collectors in a registry of its own,
// so that two servers in one process (tests) never collide on the global
// one.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	appends   *prometheus.CounterVec
	appended  prometheus.Counter
	sseActive prometheus.Gauge
}

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram: an append fsyncs, so milliseconds matter.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(status func() []projections.Status) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cxledger_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cxledger_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: latencyBuckets,
		}, []string{"route"}),
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cxledger_appends_total", Help: "Append requests (registrations included) by outcome.",
		}, []string{"outcome"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cxledger_appended_events_total", Help: "Events appended through the API.",
		}),
		sseActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cxledger_live_subscribers", Help: "Open live-feed (SSE) connections.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.appends, m.appended, m.sseActive,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if status != nil {
		m.reg.MustRegister(projectionCollector{status: status})
	}
	return m
}

func (m *metrics) observeRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) observeAppend(outcome string, events int) {
	m.appends.WithLabelValues(outcome).Inc()
	if outcome == "ok" {
		m.appended.Add(float64(events))
	}
}

func (m *metrics) sse(delta int64) { m.sseActive.Add(float64(delta)) }

// ServeHTTP writes every metric in the Prometheus exposition format.
func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// projectionCollector reads the engine's status at scrape time, so the lag
// reported is the lag now, not at the last event.
type projectionCollector struct {
	status func() []projections.Status
}

var (
	lagDesc        = prometheus.NewDesc("cxledger_projection_lag", "Positions a read model trails the log by.", []string{"projection"}, nil)
	checkpointDesc = prometheus.NewDesc("cxledger_projection_checkpoint", "Last position applied by a read model.", []string{"projection"}, nil)
	upDesc         = prometheus.NewDesc("cxledger_projection_up", "Whether a read model is running (1) or failed (0).", []string{"projection"}, nil)
)

func (c projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- checkpointDesc
	ch <- upDesc
}

func (c projectionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.status() {
		up := 1.0
		if st.State == projections.StateFailed {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(st.Lag), st.Name)
		ch <- prometheus.MustNewConstMetric(checkpointDesc, prometheus.GaugeValue, float64(st.Checkpoint), st.Name)
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, st.Name)
	}
}
