// The page: log in (or resume the session of a reload), load what the user
// may do, then show a view. Views are listed in VIEWS and chosen by the
// URL fragment (`#keys`); a view is a function that renders into the main
// element. The session ends with a clear message when the ticket expires
// or the server refuses it.

import {renderAudit} from './audit.js';
import {h} from './dom.js';
import {renderKeys} from './keys.js';
import {renderLogin} from './login.js';
import {renderRestore} from './restore.js';
import {renderRotate} from './rotate.js';
import {clearPermissions, loadPermissions} from './permissions.js';
import {currentUser, logout, onSessionEnded, resume} from './session.js';
import {renderTrash} from './trash.js';

/** The views, in navigation order: id (the URL fragment), title, render. */
const VIEWS = [
    {id: 'keys', title: 'Encryption Keys', render: renderKeys},
    {id: 'trash', title: 'Trash', render: renderTrash},
    {id: 'restore', title: 'Restore', render: renderRestore},
    {id: 'rotate', title: 'Rotation', render: renderRotate},
    {id: 'audit', title: 'Audit log', render: renderAudit},
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const userBox = document.getElementById('user');

function currentView() {
    const id = window.location.hash.replace(/^#/, '');
    return VIEWS.find((view) => view.id === id) || VIEWS[0];
}

function renderNav() {
    const active = currentView();
    nav.replaceChildren(h('ul', {},
        VIEWS.map((view) => h('li', {},
            h('a', {
                href: `#${view.id}`,
                'aria-current': view === active ? 'page' : null,
            }, view.title)))));
    nav.hidden = VIEWS.length < 2;
}

function renderUser(userid) {
    const button = h('button', {type: 'button', class: 'secondary logout', id: 'logout'}, 'Log out');
    button.addEventListener('click', () => {
        logout();
        clearPermissions();
        showLogin('You have logged out.');
    });
    userBox.replaceChildren(h('span', {class: 'userid', title: 'Logged in as'}, userid), button);
    userBox.hidden = false;
}

function showLogin(notice, userid) {
    nav.hidden = true;
    userBox.hidden = true;
    userBox.replaceChildren();
    document.querySelectorAll('dialog').forEach((dialog) => {
        // an open save dialog stays: its key is not shown anywhere else
        if (!dialog.classList.contains('save-key')) {
            dialog.remove();
        }
    });
    renderLogin(main, (user) => start(user), notice, userid);
}

async function showView() {
    renderNav();
    const view = currentView();
    document.title = `${view.title} - Proxmox Backup Server`;
    await view.render(main);
}

async function start(userid) {
    renderUser(userid);
    try {
        await loadPermissions();
    } catch (err) {
        if (currentUser()) {
            main.replaceChildren(h('p', {class: 'message error', role: 'alert'},
                `Loading your permissions failed: ${err.message}`));
        }
        return;
    }
    await showView();
}

onSessionEnded((message, userid) => {
    clearPermissions();
    showLogin(message, userid);
});

window.addEventListener('hashchange', () => {
    if (currentUser()) {
        showView();
    }
});

async function boot() {
    let userid = null;
    try {
        userid = await resume();
    } catch (err) {
        showLogin(err.message, err.userid);
        return;
    }
    if (userid) {
        await start(userid);
    } else {
        showLogin(null);
    }
}

boot();
