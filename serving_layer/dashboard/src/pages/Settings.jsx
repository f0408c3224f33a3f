// The caller's settings: profile and dashboard preferences, password, second factor, and
// API tokens — what the API lets a user change about themselves.
import { useState } from "preact/hooks";
import { api, setCsrf } from "../api.js";
import { useApi } from "../hooks.js";
import { fields, useSubmit } from "../forms.js";
import { RANGES, formatInstant } from "../dates.js";
import { preferences, useUser } from "../session.js";
import { ErrorNote, FormStatus as Status } from "../components/Message.jsx";
import { QrCode } from "../components/QrCode.jsx";

function Profile() {
  const { user, setUser } = useUser();
  const prefs = preferences(user);
  const form = useSubmit(async (el) => {
    const f = fields(el);
    setUser(await api("/me", { method: "PATCH", body: {
      name: f.name, preferences: { ...prefs, range: f.range, chart: f.chart, theme: f.theme } } }));
    return "Saved.";
  });
  return (
    <form class="card form-grid" onSubmit={form.onSubmit} aria-labelledby="profile-title">
      <h2 id="profile-title">Profile and preferences</h2>
      <p class="muted">{user.email}{user.is_admin ? " · admin" : ""}</p>
      <label>Name <input name="name" defaultValue={user.name} maxLength={100} /></label>
      <label>Default range
        <select name="range" defaultValue={prefs.range}>
          {RANGES.filter(([r]) => r !== "custom").map(([r, t]) => <option key={r} value={r}>{t}</option>)}
        </select>
      </label>
      <label>Chart
        <select name="chart" defaultValue={prefs.chart}>
          <option value="line">Line</option>
          <option value="bar">Bars</option>
        </select>
      </label>
      <label>Theme
        <select name="theme" defaultValue={prefs.theme}>
          <option value="system">As the system</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </label>
      <Status form={form} />
      <button type="submit" class="primary" disabled={form.busy}>Save</button>
    </form>
  );
}

function Password() {
  const form = useSubmit(async (el) => {
    const f = fields(el);
    if (f.new_password !== f.again) throw new Error("the two new passwords differ");
    const answer = await api("/me/password", { method: "POST",
                                               body: { current_password: f.current, new_password: f.new_password } });
    setCsrf(answer.csrf_token);
    el.reset();
    return `Password changed; ${answer.ended_sessions} other session(s) ended.`;
  });
  return (
    <form class="card form-grid" onSubmit={form.onSubmit} aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <label>Current password <input type="password" name="current" autocomplete="current-password" required /></label>
      <label>New password <input type="password" name="new_password" autocomplete="new-password" required minLength={12} /></label>
      <label>New password, again <input type="password" name="again" autocomplete="new-password" required minLength={12} /></label>
      <Status form={form} />
      <button type="submit" class="primary" disabled={form.busy}>Change password</button>
    </form>
  );
}

function SecondFactor() {
  const { user, setUser } = useUser();
  const [setup, setSetup] = useState(null);
  const start = useSubmit(async () => { setSetup(await api("/me/totp", { method: "POST" })); return " "; });
  const confirm = useSubmit(async (el) => {
    setUser(await api("/me/totp/confirm", { method: "POST", body: { code: fields(el).code } }));
    setSetup(null);
    return "Second factor on: logging in now asks for a code.";
  });
  const off = useSubmit(async (el) => {
    const f = fields(el);
    setUser(await api("/me/totp/disable", { method: "POST", body: { password: f.password, code: f.code } }));
    return "Second factor off.";
  });
  return (
    <section class="card" aria-labelledby="totp-title">
      <h2 id="totp-title">Second factor</h2>
      {user.second_factor.required && !user.second_factor.enabled && (
        <p class="error" role="alert">An admin requires a second factor for this account: set it up to continue.</p>)}
      {confirm.done && user.second_factor.enabled && <p class="ok" role="status">{confirm.done}</p>}
      {user.second_factor.enabled ? (
        <form class="form-grid" onSubmit={off.onSubmit}>
          <p>On: logging in asks for your authenticator's code.</p>
          <label>Password <input type="password" name="password" autocomplete="current-password" required /></label>
          <label>Code <input name="code" inputMode="numeric" autocomplete="one-time-code" required /></label>
          <Status form={off} />
          <button type="submit" disabled={off.busy || user.second_factor.required}>Turn off</button>
        </form>
      ) : setup ? (
        <form class="form-grid" onSubmit={confirm.onSubmit}>
          <p>Scan this with an authenticator app, or type the key, then enter the code it shows.</p>
          <QrCode text={setup.uri} label="QR code of the authenticator key" />
          <p>Key: <code data-testid="totp-secret">{setup.secret}</code></p>
          <label>Code <input name="code" inputMode="numeric" autocomplete="one-time-code" required /></label>
          <ErrorNote error={confirm.error} />
          <button type="submit" class="primary" disabled={confirm.busy}>Confirm</button>
        </form>
      ) : (
        <>
          <p>Off. A second factor asks for a code from an authenticator app at each login.</p>
          <ErrorNote error={start.error} />
          <button type="button" onClick={() => start.onSubmit()} disabled={start.busy}>Set up</button>
        </>
      )}
    </section>
  );
}

function Tokens() {
  const { user } = useUser();
  const [refresh, setRefresh] = useState(0);
  const [secret, setSecret] = useState(null);
  const list = useApi("/me/tokens", null, refresh);
  const create = useSubmit(async (el) => {
    const f = fields(el);
    const made = await api("/me/tokens", { method: "POST", body: {
      name: f.name || "token", site: f.site || null, read_only: f.read_only === "on" } });
    setSecret(made.secret);
    el.reset();
    setRefresh((n) => n + 1);
    return `Token "${made.token.name}" created.`;
  });
  const [error, setError] = useState(null);
  async function revoke(t) {
    if (!confirm(`Revoke the token "${t.name}"? Scripts using it stop working.`)) return;
    try {
      await api(`/me/tokens/${encodeURIComponent(t.id)}`, { method: "DELETE" });
      setRefresh((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }
  return (
    <section class="card" aria-labelledby="tokens-title">
      <h2 id="tokens-title">API tokens</h2>
      <p class="muted">For scripts: send <code>Authorization: Bearer …</code>. A token is shown once.</p>
      <ErrorNote error={error || list.error} />
      <table class="plain">
        <thead><tr><th scope="col">Name</th><th scope="col">Site</th><th scope="col">Access</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          {((list.data && list.data.tokens) || []).map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td><td>{t.site || "all my sites"}</td><td>{t.read_only ? "read only" : "read and change"}</td>
              <td>{formatInstant(t.created_at, undefined, true)}</td>
              <td><button type="button" class="link danger" onClick={() => revoke(t)} aria-label={`Revoke token ${t.name}`}>Revoke</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="form-grid" onSubmit={create.onSubmit}>
        <label>Name <input name="name" maxLength={100} placeholder="reporting script" /></label>
        <label>Site
          <select name="site">
            <option value="">all my sites</option>
            {Object.keys(user.sites).map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label class="check"><input type="checkbox" name="read_only" defaultChecked /> Read only</label>
        <Status form={create} />
        {secret && <p class="secret">Token (shown once): <code data-testid="token-secret">{secret}</code></p>}
        <button type="submit" class="primary" disabled={create.busy}>Create token</button>
      </form>
    </section>
  );
}

export function Settings() {
  return (
    <div class="page settings">
      <h1>Settings</h1>
      <Profile />
      <Password />
      <SecondFactor />
      <Tokens />
    </div>
  );
}
