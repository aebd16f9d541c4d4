// The login session: a ticket from `POST /access/ticket`, kept as the
// `PBSAuthCookie` cookie (as the PBS web interface keeps it, so a reload
// stays logged in), and its CSRF token, kept in memory only.
//
// A ticket is valid for the lifetime the server states in the page
// (`pbs-ticket-lifetime`, from the daemon's own constant). The page renews
// it (the ticket as password, as upstream) once an eighth of that has
// passed, and ends the session with a clear message when a request is
// refused with 401 or the ticket's time is up without a renewal.

import {request, setCsrfToken, setUnauthorizedHandler} from './api.js';

const COOKIE = 'PBSAuthCookie';

/** The ticket lifetime in seconds, as the server states it. */
function ticketLifetime() {
    const meta = document.querySelector('meta[name="pbs-ticket-lifetime"]');
    const seconds = Number(meta && meta.content);
    return Number.isFinite(seconds) && seconds > 0 ? seconds : 7200;
}

/** The ticket of the cookie, or null. */
function readTicket() {
    for (const part of document.cookie.split(';')) {
        const [name, ...rest] = part.trim().split('=');
        if (name === COOKIE) {
            try {
                return decodeURIComponent(rest.join('='));
            } catch (_) {
                return null;
            }
        }
    }
    return null;
}

function writeTicket(ticket) {
    document.cookie = `${COOKIE}=${encodeURIComponent(ticket)}; Path=/; Secure; SameSite=Strict`;
}

function clearTicket() {
    document.cookie = `${COOKIE}=; Path=/; Secure; SameSite=Strict; Max-Age=0`;
}

/**
 * The user and creation time (epoch seconds) of a ticket
 * (`PBS:USERID:HEXTIME::SIGNATURE`), or null if it has another shape.
 */
export function ticketInfo(ticket) {
    const [data] = ticket.split('::');
    const match = /^PBS:(.+):([0-9A-F]{8})$/.exec(data || '');
    if (!match) {
        return null;
    }
    return {username: match[1], created: parseInt(match[2], 16)};
}

const now = () => Math.floor(Date.now() / 1000);

let state = null; // {username, created}
let timer = null;
let endedHandler = null;

/**
 * `handler(message, userid)` is called once when the session ends by
 * itself (expired, or refused by the server); not on logout.
 */
export function onSessionEnded(handler) {
    endedHandler = handler;
}

/** The logged-in user, or null. */
export function currentUser() {
    return state ? state.username : null;
}

function start(data) {
    writeTicket(data.ticket);
    setCsrfToken(data.CSRFPreventionToken);
    const info = ticketInfo(data.ticket);
    state = {username: data.username, created: info ? info.created : now()};
    schedule();
    return state.username;
}

function stop() {
    clearTimeout(timer);
    timer = null;
    state = null;
    setCsrfToken(null);
    clearTicket();
}

/** Ends the session by itself, with `message` for the login form. */
function end(message) {
    if (!state) {
        return;
    }
    const {username} = state;
    stop();
    if (endedHandler) {
        endedHandler(message, username);
    }
}

/** Checks once a minute (and at once) whether to renew or to end. */
function schedule() {
    clearTimeout(timer);
    timer = setTimeout(tick, 60 * 1000);
}

async function tick() {
    if (!state) {
        return;
    }
    const age = now() - state.created;
    const lifetime = ticketLifetime();
    if (age >= lifetime) {
        end('Your session has expired. Log in again to continue.');
        return;
    }
    if (age >= lifetime / 8) {
        try {
            await renew();
        } catch (err) {
            if (err.status === 401) {
                end(`Your session has ended: ${err.message}. Log in again to continue.`);
                return;
            }
            // no answer: try again at the next tick
        }
    }
    schedule();
}

async function renew() {
    const ticket = readTicket();
    if (!state || !ticket) {
        throw Object.assign(new Error('no ticket'), {status: 401});
    }
    const answer = await request('POST', '/access/ticket',
        {username: state.username, password: ticket}, {login: true});
    start(answer.data);
}

/** Logs in; resolves to the user id, rejects with the server's error. */
export async function login(username, password) {
    const answer = await request('POST', '/access/ticket', {username, password}, {login: true});
    return start(answer.data);
}

/**
 * Resumes the session of a ticket cookie (after a reload): renews the
 * ticket to get a CSRF token. Resolves to the user id; null if there is
 * no cookie; rejects with a message if the ticket expired or was refused.
 */
export async function resume() {
    const ticket = readTicket();
    const info = ticket && ticketInfo(ticket);
    if (!info) {
        clearTicket();
        return null;
    }
    if (now() - info.created >= ticketLifetime()) {
        clearTicket();
        throw Object.assign(new Error('Your session has expired. Log in again to continue.'),
            {userid: info.username});
    }
    try {
        const answer = await request('POST', '/access/ticket',
            {username: info.username, password: ticket}, {login: true});
        return start(answer.data);
    } catch (err) {
        if (err.status === 401) {
            clearTicket();
            throw Object.assign(new Error(`Your session has expired or is no longer valid (${err.message}). Log in again to continue.`),
                {userid: info.username});
        }
        throw err;
    }
}

/** Logs out: forgets the ticket and the CSRF token. */
export function logout() {
    stop();
}

// a request refused with 401 while logged in: the ticket is no longer good
setUnauthorizedHandler((err) => {
    end(`Your session has expired or is no longer valid (${err.message}). Log in again to continue.`);
});
