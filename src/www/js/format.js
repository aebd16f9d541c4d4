// How values of the API read on the page.

/** What the page shows where there is no value (yet). */
export const NONE = '—';

/** An epoch (seconds) as local date and time, or NONE. */
export function dateTime(epoch) {
    if (epoch === undefined || epoch === null || epoch === '') {
        return NONE;
    }
    const date = new Date(Number(epoch) * 1000);
    if (Number.isNaN(date.getTime())) {
        return NONE;
    }
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} `
        + `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** An epoch as an ISO 8601 text for `<time datetime>`, or null. */
export function isoTime(epoch) {
    if (epoch === undefined || epoch === null || epoch === '') {
        return null;
    }
    const date = new Date(Number(epoch) * 1000);
    return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** The key type, from its KDF (`none`, `scrypt`, `pbkdf2`). */
export function keyType(kdf) {
    switch (kdf) {
    case 'none':
    case undefined:
    case null:
        return 'unprotected';
    case 'scrypt':
        return 'protected (scrypt)';
    case 'pbkdf2':
        return 'protected (PBKDF2)';
    default:
        return `protected (${kdf})`;
    }
}

/**
 * A fingerprint (32 bytes as `aa:bb:...`) as lines of eight bytes, which
 * read and compare well and fit a table column or a phone screen.
 */
export function fingerprintLines(fingerprint) {
    const bytes = String(fingerprint || '').split(':');
    if (bytes.length < 2) {
        return [String(fingerprint || NONE)];
    }
    const lines = [];
    for (let i = 0; i < bytes.length; i += 8) {
        lines.push(bytes.slice(i, i + 8).join(':'));
    }
    return lines;
}

/**
 * The sync jobs that name a key, from list and show (`active-in`: jobs
 * that encrypt with it; `associated-in`: jobs that keep it to decrypt).
 */
export function jobsOf(key) {
    const ids = (value) => (Array.isArray(value) ? value.map(String) : []);
    return {active: ids(key['active-in']), associated: ids(key['associated-in'])};
}

/** The jobs of `jobsOf`, one text each: `nightly (active)`. */
export function usedBy(key) {
    const {active, associated} = jobsOf(key);
    return [
        ...active.map((id) => `${id} (active)`),
        ...associated.map((id) => `${id} (associated)`),
    ];
}

/** `a`, `a and b`, `a, b and c`. */
export function listing(items) {
    if (items.length < 2) {
        return items.join('');
    }
    return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
