// The frame of every page: the site switcher (only the caller's sites), navigation, the
// notification bell and the account menu.
import { api, setCsrf } from "../api.js";
import { disconnectLive } from "../live.js";
import { match, navigate, onLinkClick, useLocation } from "../router.js";
import { useUser } from "../session.js";
import { Bell } from "./Bell.jsx";

function SiteSwitcher({ site }) {
  const { user } = useUser();
  const sites = Object.keys(user.sites);
  if (!sites.length) return null;
  return (
    <label class="switcher">
      <span class="visually-hidden">Site</span>
      <select aria-label="Site" value={sites.includes(site) ? site : ""}
              onChange={(e) => navigate(`/sites/${encodeURIComponent(e.currentTarget.value)}`)}>
        {!sites.includes(site) && <option value="" disabled>Choose a site</option>}
        {sites.map((s) => <option key={s} value={s}>{s}</option>)}
      </select>
    </label>
  );
}

function NavLink({ href, children, current }) {
  return (
    <a href={href} onClick={onLinkClick} aria-current={current ? "page" : undefined}>{children}</a>
  );
}

export function Layout({ children }) {
  const { user, setUser } = useUser();
  const { path } = useLocation();
  const m = match("/sites/:site", path) || match("/sites/:site/alerts", path);
  const site = m ? m.site : null;
  const known = site && user.sites[site];

  async function logout() {
    try {
      await api("/auth/logout", { method: "POST" });
    } finally {
      setCsrf(null);
      disconnectLive();
      setUser(null);
      navigate("/login");
    }
  }

  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="topbar">
        <a class="brand" href="/" onClick={onLinkClick}><span class="logo" aria-hidden="true">◐</span> Parallax</a>
        <SiteSwitcher site={site} />
        <nav aria-label="Main">
          {known && <NavLink href={`/sites/${encodeURIComponent(site)}`} current={path === `/sites/${site}`}>
            Dashboard</NavLink>}
          {known && <NavLink href={`/sites/${encodeURIComponent(site)}/alerts`} current={path.endsWith("/alerts")}>
            Alerts</NavLink>}
          <NavLink href="/settings" current={path.startsWith("/settings")}>Settings</NavLink>
          {user.is_admin && <NavLink href="/admin" current={path.startsWith("/admin")}>Admin</NavLink>}
        </nav>
        <div class="topbar-end">
          <Bell />
          <span class="who" title={user.email}>{user.name || user.email}</span>
          <button type="button" class="link" onClick={logout}>Log out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>{children}</main>
    </>
  );
}
