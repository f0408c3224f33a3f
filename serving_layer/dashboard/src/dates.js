// Dates in the site's time zone: the API takes a site's days as YYYY-MM-DD and instants
// as ISO 8601; ranges are computed here the way the API counts them.
export const RANGES = [
  ["realtime", "Realtime (30 min)"],
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["month", "This month"],
  ["custom", "Custom"],
];

export function dayIn(tz, date = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(date);
}

export function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

export function daysBetween(from, to) {
  return Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000);
}

// The API's from/to for a range, and the granularities that make sense for it.
export function rangeBounds(range, tz, custom = {}, now = new Date()) {
  const today = dayIn(tz, now);
  switch (range) {
    case "realtime":
      return { from: new Date(now.getTime() - 30 * 60_000).toISOString(), to: now.toISOString(), live: true,
               granularities: ["minute"] };
    case "today":
      return { from: today, to: today, live: true, granularities: ["minute", "hour"] };
    case "yesterday": {
      const d = addDays(today, -1);
      return { from: d, to: d, live: false, granularities: ["minute", "hour"] };
    }
    case "7d":
      return { from: addDays(today, -6), to: today, live: true, granularities: ["hour", "day"] };
    case "month":
      return { from: today.slice(0, 8) + "01", to: today, live: true, granularities: ["hour", "day"] };
    case "custom": {
      const from = custom.from || addDays(today, -6);
      const to = custom.to && custom.to >= from ? custom.to : from;
      const span = daysBetween(from, to);
      return { from, to, live: to >= today,
               granularities: span < 2 ? ["minute", "hour", "day"] : span <= 14 ? ["hour", "day"] : ["day"] };
    }
    default: // 30d
      return { from: addDays(today, -29), to: today, live: true, granularities: ["hour", "day"] };
  }
}

export function defaultGranularity(range) {
  return { realtime: "minute", today: "hour", yesterday: "hour" }[range] || "day";
}

export function formatInstant(iso, tz, withDate = false) {
  if (!iso) return "";
  const opts = { timeZone: tz, hour: "2-digit", minute: "2-digit", hour12: false };
  if (withDate) Object.assign(opts, { month: "short", day: "numeric" });
  return new Intl.DateTimeFormat(undefined, opts).format(new Date(iso));
}
