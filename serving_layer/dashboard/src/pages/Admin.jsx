// What admins manage from the dashboard: sites (domains, time zone, the tracker snippet),
// their goals and members, and users.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { useApi } from "../hooks.js";
import { fields, useSubmit } from "../forms.js";
import { match, navigate, onLinkClick } from "../router.js";
import { useUser } from "../session.js";
import { ErrorNote, FormStatus as Status, Message } from "../components/Message.jsx";

function Sites() {
  const { reload } = useUser();
  const [refresh, setRefresh] = useState(0);
  const sites = useApi("/sites", null, refresh);
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : ["UTC"];
  const form = useSubmit(async (el) => {
    const f = fields(el);
    const made = await api("/sites", { method: "POST", body: {
      site: f.site.trim(), timezone: f.timezone, domains: f.domains.split(/[\s,]+/).filter(Boolean) } });
    setRefresh((n) => n + 1);
    await reload();
    navigate(`/admin/sites/${encodeURIComponent(made.site)}`);
    return null;
  });
  return (
    <>
      <section class="card" aria-labelledby="sites-title">
        <h2 id="sites-title">Sites</h2>
        <ErrorNote error={sites.error} />
        <table class="plain">
          <thead><tr><th scope="col">Site</th><th scope="col">Domains</th><th scope="col">Time zone</th></tr></thead>
          <tbody>
            {((sites.data && sites.data.sites) || []).map((s) => (
              <tr key={s.site}>
                <td><a href={`/admin/sites/${encodeURIComponent(s.site)}`} onClick={onLinkClick}>{s.site}</a></td>
                <td>{s.domains.join(", ")}</td><td>{s.timezone}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <form class="card form-grid" onSubmit={form.onSubmit} aria-labelledby="new-site-title">
        <h2 id="new-site-title">Add a site</h2>
        <label>Site id <input name="site" required pattern="[a-z0-9._\-]{1,63}" placeholder="shop"
                              title="1-63 lowercase letters, digits, '.', '_' or '-'" /></label>
        <label>Domains <input name="domains" required placeholder="shop.example.com, www.shop.example.com" /></label>
        <label>Time zone
          <select name="timezone" defaultValue="UTC">
            {zones.map((z) => <option key={z} value={z}>{z}</option>)}
          </select>
          <span class="hint">Days in reports follow it; it cannot change later.</span>
        </label>
        <Status form={form} />
        <button type="submit" class="primary" disabled={form.busy}>Add site</button>
      </form>
    </>
  );
}

function SiteAdmin({ site }) {
  const [refresh, setRefresh] = useState(0);
  const detail = useApi(`/sites/${encodeURIComponent(site)}`, null, refresh);
  const members = useApi(`/sites/${encodeURIComponent(site)}/members`, null, refresh);
  const [error, setError] = useState(null);
  const [copied, setCopied] = useState(false);
  const bump = () => setRefresh((n) => n + 1);
  const domains = useSubmit(async (el) => {
    await api(`/sites/${encodeURIComponent(site)}`, { method: "PATCH", body: {
      domains: fields(el).domains.split(/[\s,]+/).filter(Boolean) } });
    bump();
    return "Domains saved.";
  });
  const goal = useSubmit(async (el) => {
    const f = fields(el);
    await api(`/sites/${encodeURIComponent(site)}/goals`, { method: "POST", body: {
      name: f.name, ...(f.kind === "page" ? { page: f.pattern } : { event: f.pattern }) } });
    el.reset();
    bump();
    return `Goal "${f.name}" saved.`;
  });
  const member = useSubmit(async (el) => {
    const f = fields(el);
    await api(`/sites/${encodeURIComponent(site)}/members/${encodeURIComponent(f.email.trim())}`, {
      method: "PUT", body: { role: f.role } });
    el.reset();
    bump();
    return `${f.email} is now ${f.role} of ${site}.`;
  });
  async function act(fn) {
    setError(null);
    try {
      await fn();
      bump();
    } catch (err) {
      setError(err);
    }
  }
  if (detail.error) return <Message title="Site not found">{detail.error.message}</Message>;
  if (!detail.data) return <p class="boot">Loading…</p>;
  const d = detail.data;
  return (
    <>
      <p><a href="/admin" onClick={onLinkClick}>← All sites</a></p>
      <h2>{site}</h2>
      <ErrorNote error={error} />
      <section class="card" aria-labelledby="snippet-title">
        <h3 id="snippet-title">Tracker snippet</h3>
        <p class="muted">Paste it into every page of {d.domains.join(", ")}.</p>
        <pre class="snippet" tabIndex={0} aria-label="Tracker snippet"><code data-testid="snippet">{d.tracker_snippet}</code></pre>
        <button type="button" onClick={() => navigator.clipboard.writeText(d.tracker_snippet).then(() => setCopied(true))}>
          {copied ? "Copied" : "Copy"}</button>
      </section>
      <form class="card form-grid" onSubmit={domains.onSubmit} aria-labelledby="domains-title">
        <h3 id="domains-title">Domains and time zone</h3>
        <label>Domains <input name="domains" defaultValue={d.domains.join(", ")} required /></label>
        <p>Time zone: <strong>{d.timezone}</strong> <span class="muted">(fixed: past days' final views follow it)</span></p>
        <Status form={domains} />
        <button type="submit" class="primary" disabled={domains.busy}>Save domains</button>
      </form>
      <section class="card" aria-labelledby="goals-title">
        <h3 id="goals-title">Goals</h3>
        <ul class="rules">
          {d.goals.map((g) => (
            <li key={g.name}><strong>{g.name}</strong> <span class="muted">{g.kind === "page" ? "page" : "event"} {g.pattern}</span>
              <button type="button" class="link danger" aria-label={`Remove goal ${g.name}`}
                      onClick={() => act(() => api(`/sites/${encodeURIComponent(site)}/goals/${encodeURIComponent(g.name)}`,
                                                   { method: "DELETE" }))}>Remove</button></li>
          ))}
        </ul>
        <form class="form-grid" onSubmit={goal.onSubmit}>
          <label>Name <input name="name" required maxLength={64} /></label>
          <label>Kind
            <select name="kind"><option value="page">a page (pattern)</option><option value="event">a custom event</option></select>
          </label>
          <label>Pattern or event name <input name="pattern" required placeholder="/blog/**  or  signup" /></label>
          <Status form={goal} />
          <button type="submit" disabled={goal.busy}>Add goal</button>
        </form>
      </section>
      <section class="card" aria-labelledby="members-title">
        <h3 id="members-title">Members</h3>
        <ErrorNote error={members.error} />
        <ul class="rules">
          {Object.entries((members.data && members.data.members) || {}).map(([email, role]) => (
            <li key={email}><strong>{email}</strong> <span class="muted">{role}</span>
              <button type="button" class="link danger" aria-label={`Remove member ${email}`}
                      onClick={() => act(() => api(`/sites/${encodeURIComponent(site)}/members/${encodeURIComponent(email)}`,
                                                   { method: "DELETE" }))}>Remove</button></li>
          ))}
        </ul>
        <form class="form-grid" onSubmit={member.onSubmit}>
          <label>Email <input name="email" type="email" required /></label>
          <label>Role
            <select name="role"><option value="viewer">viewer</option><option value="analyst">analyst</option></select>
          </label>
          <Status form={member} />
          <button type="submit" disabled={member.busy}>Add or change member</button>
        </form>
      </section>
    </>
  );
}

function Users() {
  const [refresh, setRefresh] = useState(0);
  const users = useApi("/users", null, refresh);
  const [password, setPassword] = useState(null);
  const form = useSubmit(async (el) => {
    const f = fields(el);
    const made = await api("/users", { method: "POST", body: { email: f.email, name: f.name, is_admin: f.is_admin === "on" } });
    setPassword({ email: made.user.email, password: made.password });
    el.reset();
    setRefresh((n) => n + 1);
    return null;
  });
  return (
    <section class="card" aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      <ErrorNote error={users.error} />
      <table class="plain">
        <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Second factor</th></tr></thead>
        <tbody>
          {((users.data && users.data.users) || []).map((u) => (
            <tr key={u.email}><td>{u.email}</td><td>{u.name}</td>
              <td>{u.is_admin ? "admin" : Object.entries(u.sites).map(([s, r]) => `${r} of ${s}`).join(", ") || "no site"}</td>
              <td>{u.totp_enabled ? "on" : u.totp_required ? "required" : "off"}</td></tr>
          ))}
        </tbody>
      </table>
      <form class="form-grid" onSubmit={form.onSubmit}>
        <label>Email <input name="email" type="email" required /></label>
        <label>Name <input name="name" maxLength={100} /></label>
        <label class="check"><input type="checkbox" name="is_admin" /> Admin</label>
        <Status form={form} />
        {password && <p class="secret">Password of {password.email} (shown once): <code>{password.password}</code></p>}
        <button type="submit" disabled={form.busy}>Add user</button>
      </form>
    </section>
  );
}

export function Admin({ path }) {
  const { user } = useUser();
  if (!user.is_admin) return <Message title="Not found">There is no page at this address.</Message>;
  const m = match("/admin/sites/:site", path);
  return (
    <div class="page admin">
      <h1>Admin</h1>
      {m ? <SiteAdmin key={m.site} site={m.site} /> : <><Sites /><Users /></>}
    </div>
  );
}
