// How numbers read: counts with separators, rates as percentages, durations as m s.
const int = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

export const METRICS = {
  visitors: { label: "Visitors", format: "count" },
  pageviews: { label: "Pageviews", format: "count" },
  events: { label: "Events", format: "count" },
  sessions: { label: "Sessions", format: "count" },
  bounce_rate: { label: "Bounce rate", format: "percent", lowerIsBetter: true },
  avg_duration: { label: "Avg. session", format: "duration" },
  pages_per_session: { label: "Pages / session", format: "decimal" },
  conversions: { label: "Conversions", format: "count" },
  conversion_rate: { label: "Conversion rate", format: "percent" },
  clicks: { label: "Clicks", format: "count" },
  impressions: { label: "Impressions", format: "count" },
  ctr: { label: "Click-through", format: "percent" },
};

export function formatValue(metric, value, { short = false } = {}) {
  if (value === null || value === undefined) return "–";
  switch ((METRICS[metric] || {}).format) {
    case "percent":
      return `${(value * 100).toFixed(1)}%`;
    case "duration": {
      const s = Math.round(value);
      return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    }
    case "decimal":
      return value.toFixed(2);
    default:
      return short && value >= 10_000 ? compact.format(value) : int.format(value);
  }
}

export function formatChange(change) {
  if (change === null || change === undefined || !isFinite(change)) return null;
  const pct = Math.round(change * 100);
  return `${pct > 0 ? "+" : ""}${pct}%`;
}

export function label(metric) {
  return (METRICS[metric] || { label: metric }).label;
}
