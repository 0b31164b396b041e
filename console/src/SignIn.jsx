// The one sign-in form: each app names its fields and how it logs in (a bearer token kept in
// this tab, or a session cookie); the form shows the app's own error message.
import { useCallback, useState } from 'react';
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

/**
 * A page's sign-in, kept in `store` (a `tokenStore` or `tokenSession`): `{current, notice,
 * signIn, signOut}`. `signOut(reason)` forgets it and shows `reason` above the form.
 */
export function useSignedIn(store, initial = store.get) {
  const [current, setCurrent] = useState(initial);
  const [notice, setNotice] = useState(null);
  const signIn = useCallback(
    (s) => {
      store.set(s);
      setNotice(null);
      setCurrent(s);
    },
    [store],
  );
  const signOut = useCallback(
    (reason) => {
      store.clear();
      setNotice(reason ?? null);
      setCurrent(null);
    },
    [store],
  );
  return { current, setCurrent, notice, signIn, signOut };
}

/**
 * A page's error line: a 401 means the session ended (revoked, or it could not be renewed),
 * so it signs out saying why; anything else is shown on the page.
 */
export function usePageError(onSignOut) {
  const [error, setError] = useState(null);
  const onError = useCallback(
    (e) => (e instanceof ApiError && e.status === 401 ? onSignOut(e.message) : setError(e.message)),
    [onSignOut],
  );
  return { error, setError, onError };
}
