// The dashboard's entry: who is logged in decides between the login page and the app.
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { disconnectLive, useLive } from "./live.js";
import { Redirect, match, useLocation } from "./router.js";
import { UserContext, applyTheme, preferences } from "./session.js";
import { Layout } from "./components/Layout.jsx";
import { Login } from "./pages/Login.jsx";
import { Dashboard } from "./pages/Dashboard.jsx";
import { Notifications } from "./pages/Notifications.jsx";
import { Settings } from "./pages/Settings.jsx";
import { Admin } from "./pages/Admin.jsx";
import { Alerts } from "./pages/Alerts.jsx";
import { Message } from "./components/Message.jsx";

function firstSite(user) {
  const pref = preferences(user).site;
  const sites = Object.keys(user.sites);
  return sites.includes(pref) ? pref : sites[0];
}

function Pages({ user }) {
  const { path, query } = useLocation();
  let m;
  if (path === "/" || path === "/login") {
    const site = firstSite(user);
    if (site) return <Redirect to={`/sites/${encodeURIComponent(site)}`} />;
    if (user.is_admin) return <Redirect to="/admin" />;
    return <Message title="No site yet">You may not see any site. Ask an admin to add you to one.</Message>;
  }
  if ((m = match("/sites/:site", path))) return <Dashboard key={m.site} site={m.site} query={query} />;
  if ((m = match("/sites/:site/alerts", path))) return <Alerts key={m.site} site={m.site} />;
  if (path === "/notifications") return <Notifications />;
  if (path.startsWith("/settings")) return <Settings path={path} />;
  if (path === "/admin" || path.startsWith("/admin/")) return <Admin path={path} />;
  return <Message title="Not found">There is no page at this address.</Message>;
}

function App() {
  const [user, setUser] = useState(undefined);
  const { path } = useLocation();
  const reload = useCallback(() => api("/me").then(setUser).catch(() => setUser(null)), []);
  useEffect(() => { reload(); }, []);
  useEffect(() => applyTheme(preferences(user).theme), [user]);
  useEffect(() => {
    const media = matchMedia("(prefers-color-scheme: dark)");
    const follow = () => applyTheme(preferences(user).theme);
    media.addEventListener("change", follow);
    return () => media.removeEventListener("change", follow);
  }, [user]);
  useLive("access_ended", () => { disconnectLive(); setUser(null); }, []);
  if (user === undefined) return <p class="boot">Loading Parallax…</p>;
  if (user && path === "/login") {
    const next = new URLSearchParams(location.search).get("next") || "";
    return <Redirect to={next.startsWith("/") && !next.startsWith("//") ? next : "/"} />;
  }
  if (user === null) {
    if (path !== "/login") return <Redirect to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} />;
    return <Login onLogin={(me) => { setUser(me); }} />;
  }
  return (
    <UserContext.Provider value={{ user, setUser, reload }}>
      <Layout>
        <Pages user={user} />
      </Layout>
    </UserContext.Provider>
  );
}

render(<App />, document.getElementById("app"));
