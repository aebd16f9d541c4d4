// What the logged-in user may do, from `GET /access/permissions` (path ->
// privilege -> propagates), to disable the controls a privilege is missing
// for. Only a hint for the page: the server checks every request.
//
// The answer holds `/`, `/system` and `/system/encryption-keys` always
// (empty where nothing is held) and each other ACL path where the user
// holds something. A path that is not listed has what the deepest listed
// path above it passes down (its privileges that propagate).

import {get} from './api.js';

/** The ACL path of the key store; a key's is `${KEYS_PATH}/${id}`. */
export const KEYS_PATH = '/system/encryption-keys';

export const SYS_AUDIT = 'Sys.Audit';
export const SYS_MODIFY = 'Sys.Modify';

let permissions = {};

/** Loads the current user's permissions. */
export async function loadPermissions() {
    permissions = (await get('/access/permissions')) || {};
}

/** Forgets them (on logout). */
export function clearPermissions() {
    permissions = {};
}

/** The ACL path of key `id`. */
export function keyPath(id) {
    return `${KEYS_PATH}/${id}`;
}

/** The privileges held on `path`, as a Set of names. */
export function privilegesOn(path) {
    if (Object.prototype.hasOwnProperty.call(permissions, path)) {
        return new Set(Object.keys(permissions[path]));
    }
    const parts = path.split('/').filter(Boolean);
    while (parts.length > 0) {
        parts.pop();
        const parent = `/${parts.join('/')}`;
        if (Object.prototype.hasOwnProperty.call(permissions, parent)) {
            const held = permissions[parent];
            return new Set(Object.keys(held).filter((name) => held[name]));
        }
    }
    return new Set();
}

/**
 * Null if `privilege` is held on `path`, else what is missing, in words
 * (for the tooltip of a disabled control).
 */
export function missing(path, privilege) {
    return privilegesOn(path).has(privilege) ? null : `Missing privilege ${privilege} on ${path}`;
}
