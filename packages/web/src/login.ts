import { setToken, token } from './api.js';
import { h } from './dom.js';

/**
 * The login form: asks for the API token when the server answers 401 (or the live socket refuses), keeps it in
 * sessionStorage, and says why it is asking (missing, not valid, lacking a scope).
 */
let form: HTMLElement | undefined;

export function showLogin(message: string, signedIn: () => void): void {
  if (form) {
    form.querySelector('#login-message')!.textContent = message;
    return;
  }
  const input = h('input', {
    id: 'login-token',
    type: 'password',
    autocomplete: 'current-password',
    placeholder: 'API token',
    required: true,
    size: 36,
  });
  form = h(
    'div',
    { id: 'login', class: 'login-backdrop' },
    h(
      'form',
      {
        class: 'login',
        onsubmit: (e: Event) => {
          e.preventDefault();
          const value = input.value.trim();
          if (!value) return;
          setToken(value);
          form?.remove();
          form = undefined;
          signedIn();
        },
      },
      h('h2', null, 'Sign in to gatescope'),
      h('p', { id: 'login-message', class: 'error' }, message),
      h('label', null, 'API token ', input),
      h('button', { type: 'submit', id: 'login-submit' }, 'Sign in'),
      h(
        'p',
        { class: 'muted' },
        'A token from GATESCOPE_TOKENS with the read scope (admin for SQL). It is kept in this tab only ' +
          '(sessionStorage) and sent as an Authorization header, never in a URL.',
      ),
    ),
  );
  document.body.append(form);
  input.focus();
}

/** Forget the token (sign out). */
export function signOut(): void {
  setToken(undefined);
}

export const signedIn = (): boolean => token() !== undefined;
