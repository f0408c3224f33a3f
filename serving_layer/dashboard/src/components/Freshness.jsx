// How fresh the live numbers are, in words: "live · 2 s behind", "catching up · 3 min
// behind", "stalled since 14:02" — from the freshness every answer carries and the
// server pushes.
import { formatInstant } from "../dates.js";

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function describeFreshness(freshness, tz) {
  const speed = freshness && freshness.speed;
  if (!speed) return { state: "unknown", text: "freshness unknown" };
  if (speed.stalled) {
    return { state: "stalled", text: `stalled since ${formatInstant(speed.stalled_since || speed.last_progress, tz)}` };
  }
  if (speed.lag_seconds === null && speed.lag_records === null) {
    return { state: "unknown", text: speed.problem ? "freshness unknown" : "live" };
  }
  const lag = speed.lag_seconds || 0;
  if (lag < 60) return { state: "live", text: `live · ${Math.max(0, Math.round(lag))} s behind` };
  return { state: "behind", text: `catching up · ${duration(lag)} behind` };
}

export function Freshness({ freshness, tz }) {
  const { state, text } = describeFreshness(freshness, tz);
  const speed = (freshness && freshness.speed) || {};
  const details = [
    freshness && freshness.batch_boundary
      ? `Final (batch) up to ${formatInstant(freshness.batch_boundary, tz, true)}` : "No final (batch) day yet",
    speed.processed_through ? `live through ${formatInstant(speed.processed_through, tz, true)}` : null,
    speed.lag_records !== null && speed.lag_records !== undefined ? `${speed.lag_records} events waiting` : null,
    speed.problem ? `problem: ${speed.problem}` : null,
  ].filter(Boolean).join(" · ");
  return (
    <p class={`freshness freshness-${state}`} data-testid="freshness" data-state={state} title={details}>
      <span class="dot" aria-hidden="true" />
      <span>{text}</span>
      <span class="visually-hidden">. {details}</span>
    </p>
  );
}
