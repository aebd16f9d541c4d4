// The restore view: upload an export bundle with its passphrase, then run
// the restore drill (`POST /config/encryption-key-export/verify`: opens
// the bundle in memory, checks every key and compares it with the store,
// writes nothing) and see the result per key, or restore its keys
// (`POST /config/encryption-key-restore`) and see what happened to each.
//
// A restore stores a passphrase-protected key the store lacks, or puts
// back a protected key's missing key file, only with the key's own
// passphrase (`key-passphrase`, docs/security.md findings 33 and 51): the
// view has a field for it, sent with Restore keys only when filled (the
// drill takes no such parameter), emptied after every restore request. A
// restore refused for want of it says so next to that field, naming every
// key the refusal names. A restore refused because the bundle's key files
// for keys whose file is missing are protected otherwise than the store
// lists them (a 400 naming `bundle`, finding 31) says so next to the
// bundle field, naming every such key. The view restores the whole
// bundle; keys of different passphrases are restored apart on the host
// (`restore FILE --id ID`), as the note says. The bundle's passphrase is
// emptied once a restore succeeds; a drill, and a refused restore, keep
// it for the restore that follows.
//
// The bundle is read into a string and sent; it is never put into the
// document. Request bodies are limited to 64 KiB (about 60 keys): a larger
// bundle is refused here before it is sent, naming the command that takes
// it on the host. Both need Sys.Modify on /system/encryption-keys.

import {BODY_LIMIT, bodySize, request} from './api.js';
import {allowIf, h, messageArea, uid, whileBusy} from './dom.js';
import {NONE, dateTime, fingerprintLines, listing} from './format.js';
import {KEYS_PATH, SYS_MODIFY, missing} from './permissions.js';

const VERIFY = '/config/encryption-key-export/verify';
const RESTORE = '/config/encryption-key-restore';

/** The restore's parameter for the passphrase of the protected keys. */
const KEY_PASSPHRASE = 'key-passphrase';

/** Whether `err` is the API's 400 naming the parameter `name`. */
function blames(err, name) {
    return err.status === 400 && err.message.includes(`parameter '${name}':`);
}

/** The ids `pattern` (global, the id its first group) finds in `err`'s words, once each. */
function namedIds(err, pattern) {
    return [...new Set([...err.message.matchAll(pattern)].map((match) => match[1]))];
}

/** Ids as a list in words: "'a', 'b' and 'c'". */
function quotedIds(ids) {
    return listing(ids.map((id) => `'${id}'`));
}

/**
 * The keys a restore refused for want of their passphrase names (`err`,
 * a 400 naming `key-passphrase`: one key, or every such key of the
 * bundle), grouped by what they are here, in words: "key 'a' (new to this
 * store)", "keys 'a' and 'c' (new to this store) and 'b' (key file
 * missing here)"; and how many.
 */
function unprovenKeys(err) {
    const named = (pattern) => namedIds(err, pattern);
    const groups = [
        [named(/encryption key '([^']+)' is (?:passphrase protected and )?new to this store/g), 'new to this store'],
        [named(/key file of encryption key '([^']+)' is missing/g), 'key file missing here'],
    ].filter(([ids]) => ids.length);
    let count = groups.reduce((sum, [ids]) => sum + ids.length, 0);
    let words = listing(groups.map(([ids, state]) => `${quotedIds(ids)} (${state})`));
    if (count === 0) {
        // worded otherwise: the ids alone, whatever they are here
        const ids = named(/encryption key '([^']+)'/g);
        count = ids.length;
        words = quotedIds(ids);
    }
    return {count, words: count ? `${count === 1 ? 'key' : 'keys'} ${words}` : 'a key of the bundle'};
}

/**
 * What to do about a restore refused for want of a key's passphrase
 * (`err`, a 400 naming `key-passphrase`), in words for the note next to
 * that field, naming every key the refusal names; `given`: whether a key
 * passphrase was sent.
 */
function keyPassphraseAdvice(err, given) {
    const keys = unprovenKeys(err);
    const one = keys.count < 2;
    const own = one ? "the key's own passphrase" : "the keys' own passphrase";
    const first = given
        ? `Nothing was restored: the key passphrase given does not open ${keys.words} to the key`
            + `${one ? ' it claims' : 's they claim'} to be - type ${own}, not the bundle's, and restore again.`
        : `Nothing was restored: ${keys.words} ${one ? 'is' : 'are'} passphrase protected, so the restore `
            + `needs ${own} (not the bundle's) to prove ${one ? 'its key file' : 'their key files'} - `
            + 'type it here and restore again.';
    return `${first} Keys of different passphrases are restored one passphrase at a time by choosing `
        + 'their ids, which this page does not do: restore the others first on the host '
        + '(proxmox-backup-manager encryption-key restore FILE --id ID --key-passphrase-file FILE), '
        + 'then the rest here.';
}

/**
 * What to do about a restore refused because the bundle's key files for
 * keys whose file is missing here are protected otherwise than the store
 * lists those keys (`err`, a 400 naming `bundle`: one key, or every such
 * key of the bundle), in words for the note next to the bundle field,
 * naming every key the refusal names; null if it names none (the bundle
 * is refused for another reason).
 */
function otherProtectionAdvice(err) {
    const ids = namedIds(err,
        /encryption key '([^']+)' is (?:not|passphrase) protected[^;]*? in the store, and the key file given for it/g);
    if (ids.length === 0) {
        return null;
    }
    const one = ids.length === 1;
    const [keys, are, them, files] = one ? ['key', 'is', 'it', 'key file'] : ['keys', 'are', 'them', 'key files'];
    return `Nothing was restored: the bundle's ${files} for ${keys} ${quotedIds(ids)} ${are} protected `
        + `otherwise than this store lists the ${keys}, whose ${files} ${are} missing here: `
        + `${one ? "it cannot be that key's file" : "none can be its key's file"}. Restore ${them} from a bundle `
        + `holding ${one ? 'its' : 'their'} ${files} as this store lists ${them} (an export of this store); `
        + "the bundle's other keys are restored apart by choosing their ids, which this page does not do: "
        + 'on the host, proxmox-backup-manager encryption-key restore FILE --id ID.';
}

/** How a key of the bundle compares with the store, in words and a tone. */
function storeState(key) {
    // a key this store lacks (a rebuilt host's): what the restore would
    // do; that the drill proves no copy of its protected key file here is
    // said, but is no fault of this store (its passphrase, given to the
    // restore, proves the file then: docs/security.md finding 51)
    if (key.store === 'absent' && !key['stored-as']) {
        // why no copy is recorded, in the server's words: a protected key
        // file, or one no restore takes (finding 73)
        return ['note', 'not in the store: restore would add it'
            + (key['copy-unproven'] ? ` (${key['copy-unproven']})` : '')];
    }
    if (key['copy-unproven']) {
        return ['bad', `no verified copy recorded - ${key['copy-unproven']}`];
    }
    if (key['store-problem']) {
        return ['bad', `in the store, but its key file does not load - ${key['store-problem']}`];
    }
    switch (key.store) {
    case 'present-equal':
        return ['good', 'in the store, the same key'];
    case 'present-different':
        return ['bad', `the store has another key under this id (${key['store-fingerprint'] || 'unknown fingerprint'})`];
    case 'absent':
        return key['stored-as']
            ? ['note', `not under this id; the store has it as ${key['stored-as']}`]
            : ['note', 'not in the store: restore would add it'];
    default:
        return ['note', key.store || NONE];
    }
}

const OUTCOMES = {
    'restored': ['good', 'restored'],
    'already-present': ['note', 'already present, left as it was'],
    'key-file-restored': ['good', 'key file put back (the entry was there)'],
};

function badge(tone, text) {
    return h('span', {class: ['badge', `tone-${tone}`]}, text);
}

function fingerprintCell(fingerprint) {
    return h('code', {class: 'fingerprint', title: fingerprint || ''},
        fingerprintLines(fingerprint).map((line) => h('span', {}, line)));
}

/** A results table of `rows` (keys), its last column from `state`. */
function resultTable(id, caption, rows, stateTitle, state) {
    return h('div', {class: 'table-wrap'},
        h('table', {class: ['keys', 'results'], id},
            h('caption', {class: 'visually-hidden'}, caption),
            h('thead', {}, h('tr', {},
                ['ID', 'Fingerprint', 'Archived', stateTitle].map((title) => h('th', {scope: 'col'}, title)))),
            h('tbody', {}, rows.map((key) => {
                const [tone, text] = state(key);
                return h('tr', {'data-key-id': key.id, 'data-tone': tone},
                    h('th', {scope: 'row', 'data-label': 'ID'}, h('span', {class: 'key-id'}, key.id)),
                    h('td', {'data-label': 'Fingerprint'}, fingerprintCell(key.fingerprint)),
                    h('td', {'data-label': 'Archived'}, key['archived-at'] ? dateTime(key['archived-at']) : NONE),
                    h('td', {'data-label': stateTitle, class: 'state'}, badge(tone, text)));
            }))));
}

/** Renders the restore view into `container`. */
export function renderRestore(container) {
    const denied = missing(KEYS_PATH, SYS_MODIFY);
    const fileField = uid('bundle-file');
    const bundleNote = messageArea('bundle-note');
    bundleNote.el.id = `${fileField}-note`;
    const file = allowIf(h('input', {
        id: fileField, type: 'file', name: 'bundle', accept: '.pbsx,.pbs-export,application/octet-stream',
        'aria-describedby': `${fileField}-hint ${bundleNote.el.id}`,
    }), denied);
    const passField = uid('bundle-passphrase');
    const passphrase = allowIf(h('input', {
        id: passField, type: 'password', name: 'passphrase', autocomplete: 'off',
    }), denied);
    const keyPassField = uid('key-passphrase');
    const keyNote = messageArea('key-passphrase-error');
    keyNote.el.id = `${keyPassField}-note`;
    const keyPassphrase = allowIf(h('input', {
        id: keyPassField, type: 'password', name: KEY_PASSPHRASE, autocomplete: 'off',
        'aria-describedby': `${keyPassField}-hint ${keyNote.el.id}`,
    }), denied);
    const message = messageArea('bundle-error');
    const drill = allowIf(h('button', {type: 'submit', class: 'primary', id: 'run-drill'}, 'Run restore drill'),
        denied);
    const restore = allowIf(h('button', {type: 'button', id: 'restore-bundle'}, 'Restore keys'), denied);
    const results = h('div', {class: 'bundle-results', 'aria-live': 'polite'});
    const form = h('form', {class: 'bundle-form', novalidate: true},
        h('div', {class: 'field'},
            h('label', {for: fileField}, 'Export bundle'),
            file,
            h('p', {id: `${fileField}-hint`, class: 'hint'},
                'A bundle made by Export (or proxmox-backup-manager encryption-key export), up to about 60 keys: '
                + 'larger ones go through the command line on the host.'),
            bundleNote.el),
        h('div', {class: 'field'},
            h('label', {for: passField}, 'Passphrase of the bundle'),
            passphrase),
        h('div', {class: 'field'},
            h('label', {for: keyPassField}, 'Passphrase of the protected keys (restore only)'),
            keyPassphrase,
            h('p', {id: `${keyPassField}-hint`, class: 'hint'},
                'Only if the bundle holds passphrase-protected keys this store lacks (or whose key file is '
                + "missing): the keys' own passphrase, which proves each key file holds its key. The drill "
                + 'does not use it; it is emptied after each restore.'),
            keyNote.el),
        message.el,
        h('div', {class: 'form-actions'}, drill, restore));
    container.replaceChildren(h('section', {class: 'view restore-view', 'aria-labelledby': 'restore-title'},
        h('h1', {id: 'restore-title'}, 'Restore'),
        h('p', {class: 'intro'},
            'The restore drill proves that a bundle restores: it opens it with its passphrase, checks every key '
            + 'against its fingerprint and compares it with this store, and changes nothing. Restore adds the '
            + "bundle's keys this store lacks; it refuses the whole bundle if an id or a key is taken otherwise."),
        denied ? h('p', {class: 'message notice readonly-note'},
            `Read-only: the drill and restore need ${SYS_MODIFY} on ${KEYS_PATH}, which you do not hold.`) : null,
        h('div', {class: 'panel'}, form),
        results));

    /**
     * The parameters of the drill, or with `withKeyPassphrase` of the
     * restore (the key passphrase only when filled), or null (with the
     * reason shown).
     */
    async function params(withKeyPassphrase) {
        if (file.files.length === 0) {
            message.error('Choose the bundle file.');
            file.focus();
            return null;
        }
        if (!passphrase.value) {
            message.error('Enter the passphrase of the bundle.');
            passphrase.focus();
            return null;
        }
        const values = {bundle: await file.files[0].text(), passphrase: passphrase.value};
        if (withKeyPassphrase && keyPassphrase.value) {
            values[KEY_PASSPHRASE] = keyPassphrase.value;
        }
        const size = bodySize(values);
        if (size > BODY_LIMIT) {
            message.error(`The bundle is too large for the page (${Math.ceil(size / 1024)} KiB to send; the API `
                + `takes ${BODY_LIMIT / 1024} KiB) - run it on the host: proxmox-backup-manager encryption-key `
                + 'export-verify FILE, or restore FILE.');
            return null;
        }
        return values;
    }

    // the drill and the restore send the same form (the restore with the
    // key passphrase): each shows what it answers, or says what failed;
    // a restore refused for want of the key passphrase says so next to it
    async function send(button, busy, path, show, failed) {
        const restoring = path === RESTORE;
        message.clear();
        keyNote.clear();
        bundleNote.clear();
        const values = await params(restoring);
        if (!values) {
            return;
        }
        results.replaceChildren();
        try {
            const answer = await whileBusy(button, busy,
                async () => (await request('POST', path, values)).data, form);
            results.replaceChildren(show(answer));
            if (restoring) {
                // the bundle is restored: its passphrase is done with (a
                // drill or a refused restore keeps it for the restore)
                passphrase.value = '';
            }
        } catch (err) {
            message.error(`${failed}: ${err.message}`);
            const otherProtection = restoring && blames(err, 'bundle') ? otherProtectionAdvice(err) : null;
            if (restoring && blames(err, KEY_PASSPHRASE)) {
                keyNote.error(keyPassphraseAdvice(err, KEY_PASSPHRASE in values));
                keyPassphrase.focus();
            } else if (otherProtection) {
                bundleNote.error(otherProtection);
                file.focus();
            }
        } finally {
            if (restoring) {
                keyPassphrase.value = '';
            }
        }
    }

    form.addEventListener('submit', (event) => {
        event.preventDefault();
        return send(drill, 'Checking…', VERIFY, (report) => {
            const keys = report.keys || [];
            const problems = keys.filter((key) => storeState(key)[0] === 'bad').length;
            return h('section', {class: 'drill-result', 'aria-labelledby': 'drill-title'},
                h('h2', {id: 'drill-title'}, 'Restore drill'),
                h('p', {class: ['message', problems ? 'error' : 'note', 'drill-summary']},
                    `The bundle opens: all ${keys.length} key${keys.length === 1 ? '' : 's'} intact`
                    + (problems ? `; ${problems} differ from or cannot be loaded in this store.` : '.')),
                h('dl', {class: 'export-summary'},
                    h('dt', {}, 'Origin'), h('dd', {}, report.origin || NONE),
                    h('dt', {}, 'Created'), h('dd', {}, dateTime(report.created)),
                    h('dt', {}, 'Opens with'), h('dd', {}, listing(report.recipients || []) || NONE)),
                resultTable('drill-table', 'Keys of the bundle and this store', keys, 'This store', storeState));
        }, 'The drill failed');
    });

    restore.addEventListener('click', () => send(restore, 'Restoring…', RESTORE, (restored) => {
        const added = restored.filter((key) => key.outcome !== 'already-present').length;
        return h('section', {class: 'restore-result', 'aria-labelledby': 'restore-result-title'},
            h('h2', {id: 'restore-result-title'}, 'Restore'),
            h('p', {class: 'message note restore-summary'},
                `Restored ${added} of ${restored.length} key${restored.length === 1 ? '' : 's'}`
                + (added < restored.length ? '; the others were already in the store.' : '.')),
            resultTable('restore-table', 'What the restore did per key', restored, 'Outcome',
                (key) => OUTCOMES[key.outcome] || ['note', key.outcome]));
    }, 'The restore failed'));
}
