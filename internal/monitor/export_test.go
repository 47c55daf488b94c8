package monitor

import "context"

// Evaluate runs one alert evaluation, as Run does every second, so tests
// can step the alerts with a fake clock instead of waiting for the ticker.
func (m *Monitor) Evaluate() { m.alerts.evaluate(m.Snapshot(), m.cfg) }

// Deliver posts queued alerts to the webhook until ctx ends, as Run does.
func (m *Monitor) Deliver(ctx context.Context) { m.alerts.deliver(ctx) }
