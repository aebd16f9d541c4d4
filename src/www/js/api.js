// Talking to the API of the same server (`/api2/json`), as any PBS client:
// the ticket travels as the `PBSAuthCookie` cookie (the browser sends it),
// writes carry the `CSRFPreventionToken` header, parameters are sent as a
// query (GET) or a form body. Answers are `{"data": ...}` (plus `digest`);
// errors are a status and a plain-text message, which `ApiError` carries
// unchanged so the page can show the server's own words.

const BASE = '/api2/json';

/** An answer other than 200, or no answer at all (status 0). */
export class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.name = 'ApiError';
        this.status = status;
    }
}

let csrfToken = null;
let onUnauthorized = null;

/** The CSRF token of the current ticket (`null` when logged out). */
export function setCsrfToken(token) {
    csrfToken = token;
}

/**
 * `handler(error)` is called when an authenticated request is refused
 * with 401: the ticket expired or is no longer valid.
 */
export function setUnauthorizedHandler(handler) {
    onUnauthorized = handler;
}

/**
 * `params` (an object; `undefined` values left out) as URL parameters; an
 * array value repeats its parameter (`id=a&id=b`).
 */
export function encode(params) {
    const form = new URLSearchParams();
    for (const [name, value] of Object.entries(params || {})) {
        for (const item of Array.isArray(value) ? value : [value]) {
            if (item !== undefined && item !== null) {
                form.append(name, String(item));
            }
        }
    }
    return form;
}

/**
 * The API's limit on a request body (docs/api.md, "Size"): larger ones
 * are answered 413.
 */
export const BODY_LIMIT = 64 * 1024;

/** The size in bytes of the form body `params` make. */
export function bodySize(params) {
    return new TextEncoder().encode(encode(params).toString()).length;
}

/**
 * `method path` with `params`; resolves to the whole answer object
 * (`{data, digest?}`), rejects with an `ApiError`. `options.login` marks
 * the login itself, whose 401 is a refused password, not an ended session.
 */
export async function request(method, path, params, options = {}) {
    let url = BASE + path;
    const init = {
        method,
        headers: {Accept: 'application/json'},
        credentials: 'same-origin',
        cache: 'no-store',
        redirect: 'error',
    };
    const form = encode(params);
    if (method === 'GET') {
        const query = form.toString();
        if (query) {
            url += `?${query}`;
        }
    } else {
        init.body = form;
        if (csrfToken) {
            init.headers.CSRFPreventionToken = csrfToken;
        }
    }
    let response;
    try {
        response = await fetch(url, init);
    } catch (err) {
        throw new ApiError(0, `no answer from the server - ${err.message}`);
    }
    if (!response.ok) {
        const text = (await response.text().catch(() => '')).trim();
        const error = new ApiError(response.status, text || `${response.status} ${response.statusText}`);
        if (response.status === 401 && !options.login && onUnauthorized) {
            onUnauthorized(error);
        }
        throw error;
    }
    return response.json();
}

/** `GET path`: the answer's data. */
export async function get(path, params) {
    return (await request('GET', path, params)).data;
}
