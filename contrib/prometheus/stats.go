package prometheus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rpc "github.com/seedrpc/rpc"
)

// ClientStatsCollector exports a client's connection pools and service
// discovery, read from (*rpc.Client).Stats at each scrape:
//
//	seedrpc_client_connections{address}                open connections per address
//	seedrpc_client_registry_instances{service}         instances the client routes to
//	seedrpc_client_registry_sync_age_seconds{service}  seconds since the registry last gave the service's list
//
// The sync age grows between membership changes: the registry's watch
// sends a list when the membership changes (see rpc.ClientStats.Synced), so
// it tells how old the client's view is. A service whose first lookup
// failed has no age.
type ClientStatsCollector struct {
	cli *rpc.Client
	now func() time.Time
}

var _ prometheus.Collector = (*ClientStatsCollector)(nil)

var (
	connsDesc = prometheus.NewDesc("seedrpc_client_connections",
		"Open connections of the client, by address.", []string{"address"}, nil)
	instancesDesc = prometheus.NewDesc("seedrpc_client_registry_instances",
		"Instances the client routes to, by service, from its registry.", []string{"service"}, nil)
	syncAgeDesc = prometheus.NewDesc("seedrpc_client_registry_sync_age_seconds",
		"Seconds since the registry last gave the client the service's instance list.", []string{"service"}, nil)
)

// NewClientStatsCollector returns the collector of cli's pool and
// discovery state. Register one per client (a Registerer refuses two
// collectors of the same series).
func NewClientStatsCollector(cli *rpc.Client) *ClientStatsCollector {
	return &ClientStatsCollector{cli: cli, now: time.Now}
}

// Describe sends the descriptors of the pool and discovery metrics.
func (c *ClientStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connsDesc
	ch <- instancesDesc
	ch <- syncAgeDesc
}

// Collect sends the client's current pool and discovery state.
func (c *ClientStatsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.cli.Stats()
	for addr, n := range st.Conns {
		ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(n), addr)
	}
	for service, n := range st.Instances {
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n), service)
	}
	now := c.now()
	for service, at := range st.Synced {
		ch <- prometheus.MustNewConstMetric(syncAgeDesc, prometheus.GaugeValue, max(now.Sub(at).Seconds(), 0), service)
	}
}
