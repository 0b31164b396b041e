// The one sign-in form: each app names its fields and how it logs in (a bearer token kept in
// this tab, or a session cookie); the form shows the app's own error message.
import { useState } from 'react';
import { ApiError } from './api.js';

/** Email and password: the fields of the apps that sign in by email. */
export const EMAIL_FIELDS = [
  { name: 'email', label: 'Email', type: 'email', autoComplete: 'username' },
  { name: 'password', label: 'Password', type: 'password', autoComplete: 'current-password' },
];

/** Username and password. */
export const USERNAME_FIELDS = [
  { name: 'username', label: 'Username', autoComplete: 'username' },
  EMAIL_FIELDS[1],
];

/**
 * `login(values)` (values: field name → text) resolves to what `onSignedIn` gets, or throws
 * an ApiError whose message is shown. `notice` says why the user is here again (e.g. a 401).
 */
export function SignIn({ title, fields, login, onSignedIn, notice }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    setBusy(true);
    try {
      onSignedIn(await login(Object.fromEntries(fields.map((f) => [f.name, form.get(f.name)]))));
    } catch (e) {
      setError(e instanceof ApiError ? `${e.status}: ${e.message}` : e.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main>
      <h1>{title}</h1>
      {notice && <p className="error">{notice}</p>}
      <form id="signin" className="inline" onSubmit={submit}>
        {fields.map((f) => (
          <label key={f.name}>
            {f.label}
            <input id={f.name} name={f.name} type={f.type ?? 'text'} autoComplete={f.autoComplete} required />
          </label>
        ))}
        <button id="signin-submit" type="submit" disabled={busy}>Sign in</button>
      </form>
      {error && <p id="signin-error" className="error" role="alert">{error}</p>}
    </main>
  );
}
