// Ranges in the site's zone, as the API counts days.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addDays, dayIn, rangeBounds } from "../src/dates.js";

const NOW = new Date("2026-03-29T00:30:00Z"); // already the 29th in Paris, still the 28th in New York

test("today is the site's day", () => {
  assert.equal(dayIn("Europe/Paris", NOW), "2026-03-29");
  assert.equal(dayIn("America/New_York", NOW), "2026-03-28");
});

test("day arithmetic crosses months and years", () => {
  assert.equal(addDays("2026-03-01", -1), "2026-02-28");
  assert.equal(addDays("2026-12-31", 1), "2027-01-01");
});

test("each range's bounds and granularities", () => {
  const tz = "Europe/Paris";
  assert.deepEqual(rangeBounds("today", tz, {}, NOW), { from: "2026-03-29", to: "2026-03-29", live: true,
                                                        granularities: ["minute", "hour"] });
  assert.equal(rangeBounds("yesterday", tz, {}, NOW).from, "2026-03-28");
  assert.equal(rangeBounds("yesterday", tz, {}, NOW).live, false);
  assert.deepEqual([rangeBounds("7d", tz, {}, NOW).from, rangeBounds("30d", tz, {}, NOW).from],
                   ["2026-03-23", "2026-02-28"]);
  assert.equal(rangeBounds("month", tz, {}, NOW).from, "2026-03-01");
  const rt = rangeBounds("realtime", tz, {}, NOW);
  assert.equal(Date.parse(rt.to) - Date.parse(rt.from), 30 * 60_000);
  assert.deepEqual(rangeBounds("custom", tz, { from: "2026-01-01", to: "2026-03-01" }, NOW).granularities, ["day"]);
  // A custom range that ends before it starts is one day.
  assert.deepEqual(rangeBounds("custom", tz, { from: "2026-03-10", to: "2026-03-01" }, NOW).to, "2026-03-10");
});
