// Who is logged in (GET /me), their preferences, and the page's theme.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { api } from "./api.js";

export const DEFAULT_PREFERENCES = { range: "7d", chart: "line", theme: "system" };
export const UserContext = createContext(null);

export function useUser() {
  return useContext(UserContext);
}

export function preferences(user) {
  return { ...DEFAULT_PREFERENCES, ...((user && user.preferences) || {}) };
}

export function applyTheme(theme) {
  const dark = theme === "dark" || (theme === "system" && matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

export async function savePreferences(user, changes) {
  const next = { ...preferences(user), ...changes };
  const me = await api("/me", { method: "PATCH", body: { preferences: next } });
  return me;
}
