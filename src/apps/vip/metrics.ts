/** Prometheus metrics of one `tspread vip` instance. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class VipMetrics {
  readonly registry = new Registry();
  readonly held = new Gauge({ name: 'tspread_vip_addresses_held', help: 'Virtual addresses this host holds.', registers: [this.registry] });
  readonly takeovers = new Counter({
    name: 'tspread_vip_takeovers_total',
    help: 'Virtual interfaces taken over from a member that departed.',
    registers: [this.registry],
  });
  readonly acquisitions = new Counter({ name: 'tspread_vip_acquisitions_total', help: 'Virtual interfaces acquired.', registers: [this.registry] });
  readonly releases = new Counter({ name: 'tspread_vip_releases_total', help: 'Virtual interfaces released.', registers: [this.registry] });
  readonly errors = new Counter({
    name: 'tspread_vip_errors_total',
    help: 'Failed acquisitions and releases, by kind (in-use, ip).',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly takeoverSeconds = new Histogram({
    name: 'tspread_vip_takeover_seconds',
    help: 'From the view that dropped the holder to the address configured here.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
}
