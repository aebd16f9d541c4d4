// The login form: a `pbs` realm user and password (this daemon has no
// other password realm; `root@pam` uses API tokens). A message above the
// form says why it is shown again (session expired, logged out); a refused
// login shows the server's words next to the button.

import {h, messageArea, uid, whileBusy} from './dom.js';
import {login} from './session.js';

const REALM = 'pbs';

/**
 * Renders the login form into `container`; `notice` (optional) says why,
 * `userid` (optional) fills in the user name of the session that ended.
 * Calls `onLogin(userid)` after a successful login.
 */
export function renderLogin(container, onLogin, notice, userid) {
    const userId = uid('login-user');
    const passwordId = uid('login-password');
    const user = h('input', {
        id: userId, name: 'username', type: 'text', autocomplete: 'username',
        autocapitalize: 'off', spellcheck: 'false', required: true,
        value: userid || '', 'aria-describedby': `${userId}-hint`,
    });
    const password = h('input', {
        id: passwordId, name: 'password', type: 'password', autocomplete: 'current-password',
        required: true,
    });
    const message = messageArea('login-error');
    const submit = h('button', {type: 'submit', class: 'primary'}, 'Log in');
    const form = h('form', {class: 'login-form', novalidate: true},
        h('div', {class: 'field'},
            h('label', {for: userId}, 'User name'),
            user,
            h('p', {id: `${userId}-hint`, class: 'hint'}, `A user of the ${REALM} realm, e.g. alice@${REALM}.`)),
        h('div', {class: 'field'},
            h('label', {for: passwordId}, 'Password'),
            password),
        h('div', {class: 'form-actions'}, submit),
        message.el);
    const section = h('section', {class: 'login', 'aria-labelledby': 'login-title'},
        h('h1', {id: 'login-title'}, 'Log in'),
        notice ? h('p', {class: 'message notice session-notice', role: 'status'}, notice) : null,
        form);
    container.replaceChildren(section);

    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        message.clear();
        let name = user.value.trim();
        if (!name || !password.value) {
            message.error('Enter a user name and a password.');
            (name ? password : user).focus();
            return;
        }
        if (!name.includes('@')) {
            name = `${name}@${REALM}`;
        }
        try {
            const userid = await whileBusy(submit, 'Logging in…', () => login(name, password.value), form);
            password.value = '';
            onLogin(userid);
        } catch (err) {
            password.value = '';
            const reason = err.status === 401
                ? `Login failed: ${err.message}. Check the user name and password.`
                : `Login failed: ${err.message}`;
            message.error(reason);
            password.focus();
        }
    });
    (user.value ? password : user).focus();
}
