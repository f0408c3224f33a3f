// A site's alert rules: their state, and (analysts) the editor to add and remove them.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { useApi } from "../hooks.js";
import { fields, useSubmit } from "../forms.js";
import { formatInstant } from "../dates.js";
import { useUser } from "../session.js";
import { ErrorNote, Message } from "../components/Message.jsx";

const MEASURES = ["pageviews", "events", "visitors", "clicks", "impressions"];
const CONDITIONS = { above: "rises above", below: "falls below", spike: "spikes by a factor of",
                     drop: "drops by a factor of" };
const WINDOWS = [[300, "5 minutes"], [900, "15 minutes"], [3600, "1 hour"], [21600, "6 hours"], [86400, "1 day"]];

function describe(rule) {
  const w = (WINDOWS.find(([s]) => s === rule.window_s) || [0, `${rule.window_s} s`])[1];
  const base = ["spike", "drop"].includes(rule.condition)
    ? ` against ${rule.baseline === "week_ago" ? "a week before" : "the 7-day average"}` : "";
  return `${rule.measure} over ${w} ${CONDITIONS[rule.condition] || rule.condition} ${rule.threshold}${base}`
    + (rule.filters ? ` (where ${rule.filters})` : "");
}

function RuleForm({ site, goals, onCreated }) {
  const { user } = useUser();
  const [condition, setCondition] = useState("above");
  const [channel, setChannel] = useState("live");
  const [secret, setSecret] = useState(null);
  const form = useSubmit(async (el) => {
    const f = fields(el);
    const created = await api(`/sites/${encodeURIComponent(site)}/alerts`, {
      method: "POST",
      body: {
        name: f.name, measure: f.measure, window_s: Number(f.window_s), condition: f.condition,
        threshold: Number(f.threshold), baseline: f.baseline || "week_ago", filters: f.filters || "",
        min_volume: Number(f.min_volume || 0), resolve_after_s: Number(f.resolve_after_s || 600),
        recipients: { [user.email]: f.channel }, webhook_url: f.channel === "webhook" ? f.webhook_url : "",
      },
    });
    setSecret(created.webhook_secret || null);
    el.reset();
    onCreated();
    return `Rule "${created.name}" added.`;
  });
  const relative = condition === "spike" || condition === "drop";
  return (
    <form class="card form-grid" onSubmit={form.onSubmit} aria-labelledby="new-rule">
      <h2 id="new-rule">New rule</h2>
      <label>Name <input name="name" required maxLength={100} placeholder="Pricing page busy" /></label>
      <label>Measure
        <select name="measure">
          {MEASURES.map((m) => <option key={m} value={m}>{m}</option>)}
          {goals.map((g) => <option key={g.name} value={`goal:${g.name}`}>{`goal: ${g.name}`}</option>)}
        </select>
      </label>
      <label>Window
        <select name="window_s">{WINDOWS.map(([s, t]) => <option key={s} value={s}>{t}</option>)}</select>
      </label>
      <label>Condition
        <select name="condition" value={condition} onChange={(e) => setCondition(e.currentTarget.value)}>
          {Object.entries(CONDITIONS).map(([c, t]) => <option key={c} value={c}>{t}</option>)}
        </select>
      </label>
      <label>{relative ? "Factor" : "Threshold"}
        <input name="threshold" type="number" min={relative ? 1.01 : 0} step="any" required defaultValue={relative ? 2 : 100} />
      </label>
      {relative && (
        <label>Baseline
          <select name="baseline">
            <option value="week_ago">the same window a week before</option>
            <option value="trailing">the 7-day average</option>
          </select>
        </label>
      )}
      <label>Filters <input name="filters" placeholder="page==/pricing" maxLength={2000} /></label>
      <label>Minimum volume <input name="min_volume" type="number" min="0" defaultValue="0" /></label>
      <label>Resolve after (s) <input name="resolve_after_s" type="number" min="0" defaultValue="600" /></label>
      <label>Tell me by
        <select name="channel" value={channel} onChange={(e) => setChannel(e.currentTarget.value)}>
          <option value="live">the dashboard (live)</option>
          <option value="email">email</option>
          <option value="webhook">webhook</option>
          <option value="digest">a daily digest</option>
        </select>
      </label>
      {channel === "webhook" && <label>Webhook URL <input name="webhook_url" type="url" required /></label>}
      <ErrorNote error={form.error} />
      {form.done && <p class="ok" role="status">{form.done}</p>}
      {secret && <p class="secret">Webhook secret (shown once): <code>{secret}</code></p>}
      <button type="submit" class="primary" disabled={form.busy}>Add rule</button>
    </form>
  );
}

// The rule's episode now: firing since when (and the value that made it), or quiet.
function RuleState({ state, tz }) {
  if (!state || !state.evaluated_at) return <span class="badge-state" data-testid="rule-state">not evaluated yet</span>;
  const value = state.last_value === null ? "" : ` · last value ${state.last_value}`;
  if (state.firing) {
    return <span class="badge-state firing" data-testid="rule-state">firing since {formatInstant(state.started_at, tz)}{value}</span>;
  }
  return <span class="badge-state" data-testid="rule-state">quiet{value}</span>;
}

export function Alerts({ site }) {
  const { user } = useUser();
  const [refresh, setRefresh] = useState(0);
  const info = useApi(`/sites/${encodeURIComponent(site)}`);
  const rules = useApi(`/sites/${encodeURIComponent(site)}/alerts`, null, refresh);
  const [error, setError] = useState(null);
  const analyst = user.is_admin || ["analyst", "admin"].includes(user.sites[site]);
  if (info.error) return <Message title="Site not found">{info.error.message}</Message>;
  async function remove(rule) {
    if (!confirm(`Remove the rule "${rule.name}"?`)) return;
    try {
      await api(`/sites/${encodeURIComponent(site)}/alerts/${encodeURIComponent(rule.id)}`, { method: "DELETE" });
      setRefresh((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }
  const tz = info.data && info.data.timezone;
  return (
    <div class="page">
      <h1>Alerts · {site}</h1>
      <ErrorNote error={error || rules.error} />
      <section class="card" aria-labelledby="rules-title">
        <h2 id="rules-title">Rules</h2>
        {rules.data && rules.data.rules.length === 0 && <p class="muted">No rule yet.</p>}
        <ul class="rules">
          {((rules.data && rules.data.rules) || []).map((r) => (
            <li key={r.id} data-testid="rule">
              <strong>{r.name}</strong> <RuleState state={r.state} tz={tz} /> <span class="muted">{describe(r)}</span>
              <span class="muted small"> · to {Object.entries(r.recipients).map(([e, c]) => `${e} (${c})`).join(", ")}
                {r.created_at && ` · added ${formatInstant(r.created_at, tz, true)}`}</span>
              {analyst && <button type="button" class="link danger" onClick={() => remove(r)}
                                  aria-label={`Remove rule ${r.name}`}>Remove</button>}
            </li>
          ))}
        </ul>
      </section>
      {analyst && info.data && <RuleForm site={site} goals={info.data.goals} onCreated={() => setRefresh((n) => n + 1)} />}
    </div>
  );
}
