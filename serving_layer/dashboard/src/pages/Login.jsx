// Logging in: email and password, then the authenticator's code if the account has one.
import { useState } from "preact/hooks";
import { api, setCsrf } from "../api.js";
import { ErrorNote } from "../components/Message.jsx";

export function Login({ onLogin }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [needsCode, setNeedsCode] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await api("/auth/login", {
        method: "POST", body: { email, password, ...(needsCode && totp ? { totp } : {}) },
      });
      setCsrf(answer.csrf_token);
      onLogin(answer.user);
    } catch (err) {
      if (err.body && err.body.second_factor === "totp" && !needsCode) {
        setNeedsCode(true);
      } else {
        setError(err);
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="login">
      <form class="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title"><span class="logo" aria-hidden="true">◐</span> Parallax</h1>
        <p class="muted">Log in to see your sites' analytics.</p>
        <label>
          Email
          <input type="email" name="email" autocomplete="username" required value={email}
                 onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input type="password" name="password" autocomplete="current-password" required value={password}
                 onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {needsCode && (
          <label>
            Authenticator code
            <input name="totp" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,8}" required
                   value={totp} onInput={(e) => setTotp(e.currentTarget.value)} autoFocus />
            <span class="hint">This account has a second factor: type the code your authenticator app shows.</span>
          </label>
        )}
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>{busy ? "Logging in…" : "Log in"}</button>
      </form>
    </main>
  );
}
