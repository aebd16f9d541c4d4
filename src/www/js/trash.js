// The trash view: the keys removed from the store (`GET
// /config/encryption-key-trash`), when and by whom, and until when they
// are kept; restore one (under its id or another), or purge it for good
// after typing its id. The keys view shows the same entries as keys "in
// trash" and restores them through `openRestoreDialog`.
//
// The trash's privileges are on the store as a whole: Sys.Audit on
// /system/encryption-keys to list, Sys.Modify to restore or purge.

import {request} from './api.js';
import {confirmByTyping, openDialog} from './dialog.js';
import {allowIf, h, loadingList, messageArea, uid, whileBusy} from './dom.js';
import {NONE, dateTime, fingerprintLines, isoTime} from './format.js';
import {KEYS_PATH, SYS_AUDIT, SYS_MODIFY, missing} from './permissions.js';

export const TRASH = '/config/encryption-key-trash';

/** Why an entry is in the trash, in words (the server's `reason`). */
const REASONS = {
    'delete': 'removed',
    'repair-orphan': 'repair: key file without an entry',
    'repair-temp': 'repair: left-over temporary file',
    'repair-unrecorded': 'repair: a trash file without its record',
    'rotate-abort': 'new key of an aborted rotation',
    'store-failed': 'a failed store',
};

export function trashReason(entry) {
    return REASONS[entry.reason] || entry.reason || NONE;
}

/** The trash entries (oldest first), or null without Sys.Audit on the store. */
export async function loadTrash() {
    if (missing(KEYS_PATH, SYS_AUDIT)) {
        return null;
    }
    return (await request('GET', TRASH)).data || [];
}

/**
 * "purge after 2026-12-29 10:00", or that it stays until purged by hand (no
 * purge date, or no verified copy of its key: the daily purge keeps it).
 */
export function purgeText(entry) {
    if (entry['purge-after'] === undefined || entry['purge-after'] === null) {
        return 'kept until purged by hand';
    }
    if (!hasVerifiedCopy(entry)) {
        return 'kept until purged by hand: no verified copy';
    }
    return `purge after ${dateTime(entry['purge-after'])}`;
}

function timeCell(epoch) {
    const iso = isoTime(epoch);
    return iso ? h('time', {datetime: iso}, dateTime(epoch)) : NONE;
}

/**
 * The dialog that puts trash entry `entry` back into the store, under its
 * id or the one typed into "Restore as"; `done(restored)` after success.
 */
export function openRestoreDialog(entry, done) {
    const asField = uid('restore-as');
    const as = h('input', {
        id: asField, name: 'as', type: 'text', autocomplete: 'off', autocapitalize: 'off',
        spellcheck: 'false', placeholder: entry.id, 'aria-describedby': `${asField}-hint`,
    });
    const message = messageArea('restore-error');
    const cancel = h('button', {type: 'button', class: 'secondary'}, 'Cancel');
    const submit = h('button', {type: 'submit', class: 'primary'}, 'Restore key');
    const form = h('form', {class: 'restore-form', novalidate: true},
        h('p', {}, `This puts '${entry.id}' (removed ${dateTime(entry.time)}) back into the key store. `
            + 'It is refused if a key of the store has that id or the same fingerprint.'),
        h('div', {class: 'field'},
            h('label', {for: asField}, 'Restore as (key ID)'),
            as,
            h('p', {id: `${asField}-hint`, class: 'hint'},
                `Leave empty to restore it as '${entry.id}'; give another ID if that one is taken.`)),
        message.el,
        h('div', {class: 'dialog-actions'}, cancel, submit));
    const {dialog, close} = openDialog({
        title: `Restore encryption key ${entry.id} from the trash`, body: [form], className: 'restore-trash',
    });
    cancel.addEventListener('click', close);
    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        message.clear();
        const asId = as.value.trim();
        try {
            const restored = await whileBusy(submit, 'Restoring…', async () => (await request('POST',
                `${TRASH}/${encodeURIComponent(entry.name)}/restore`, {as: asId || undefined})).data, dialog);
            close();
            await done(restored);
        } catch (err) {
            message.error(err.message);
        }
    });
    as.focus();
}

/** Whether a verified copy of the entry's key is recorded (an export bundle that passed the drill). */
function hasVerifiedCopy(entry) {
    return entry['verified-copy'] !== undefined && entry['verified-copy'] !== null;
}

/**
 * Purges trash entry `entry` after typing its id (and, without a verified
 * copy of its key, ticking that every backup made with it is lost); `done()`
 * after success.
 */
export function confirmPurge(entry, done) {
    const copied = hasVerifiedCopy(entry);
    confirmByTyping({
        title: `Purge encryption key ${entry.id}`,
        text: `This destroys '${entry.id}' (fingerprint ${entry.fingerprint || 'unknown'}) for good: it cannot be `
            + 'restored afterwards, and backups encrypted with it cannot be restored without another copy '
            + 'of the key (an export bundle, a paper key). '
            + (copied
                ? `A verified copy of it was recorded on ${dateTime(entry['verified-copy'])}.`
                : 'No verified copy of it is recorded: export it and run the restore drill on the bundle '
                    + 'first, unless you mean to destroy every backup made with it.'),
        acknowledge: copied ? undefined : 'Destroy it without a verified copy: every backup encrypted with it '
            + 'is lost unless a copy exists elsewhere.',
        expected: entry.id,
        actionLabel: 'Purge key',
        busyLabel: 'Purging…',
        action: async () => {
            const anyway = copied ? '' : '?without-verified-copy=1';
            await request('DELETE', `${TRASH}/${encodeURIComponent(entry.name)}${anyway}`);
            await done();
        },
    });
}

/** The view's elements while it is shown. */
let elements = null;

/** Renders the trash view into `container` and loads it. */
export function renderTrash(container) {
    const auditDenied = missing(KEYS_PATH, SYS_AUDIT);
    const refresh = h('button', {type: 'button', id: 'refresh-trash'}, 'Refresh');
    const status = h('p', {class: 'list-status', role: 'status'});
    const listMessage = messageArea('list-error');
    const progress = h('progress', {class: 'list-progress', hidden: true, 'aria-label': 'Loading the trash'});
    const body = h('tbody');
    const table = h('table', {class: ['keys', 'trash'], id: 'trash-table'},
        h('caption', {class: 'visually-hidden'}, 'Keys in the trash'),
        h('thead', {}, h('tr', {},
            ['ID', 'Fingerprint', 'Removed', 'Removed by', 'Reason', 'Purge after', 'Verified copy']
                .map((title) => h('th', {scope: 'col'}, title)),
            h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Actions')))),
        body);
    elements = {body, table, status, listMessage, progress, refresh};
    container.replaceChildren(h('section', {class: 'view trash-view', 'aria-labelledby': 'trash-title'},
        h('h1', {id: 'trash-title'}, 'Trash'),
        h('p', {class: 'intro'},
            'Removed keys stay here until their keep time is over; the daily purge then destroys those '
            + 'of which a verified copy is recorded (an export bundle that passed the restore drill) and '
            + 'keeps the others. Restore a key to use it again.'),
        h('div', {class: 'toolbar', role: 'toolbar', 'aria-label': 'Trash actions'}, refresh),
        missing(KEYS_PATH, SYS_MODIFY)
            ? h('p', {class: 'message notice readonly-note'},
                `Read-only: you can see the trash but not restore or purge keys (${missing(KEYS_PATH, SYS_MODIFY)}).`)
            : null,
        listMessage.el,
        progress,
        status,
        h('div', {class: 'table-wrap'}, table)));
    refresh.addEventListener('click', () => load());
    if (auditDenied) {
        listMessage.error(`You cannot see the trash (${auditDenied}).`);
        refresh.disabled = true;
        return Promise.resolve();
    }
    return load();
}

async function load(announce) {
    if (!elements || !elements.table.isConnected) {
        return;
    }
    const {body, table, status, listMessage, progress, refresh} = elements;
    const busy = {table, progress, button: refresh, message: listMessage};
    await loadingList(busy, 'the trash', async () => {
        const entries = await loadTrash();
        body.replaceChildren(...(entries.length
            ? entries.map((entry) => renderRow(entry))
            : [h('tr', {class: 'empty'}, h('td', {colspan: 8}, 'The trash is empty.'))]));
        status.textContent = announce || `${entries.length} key${entries.length === 1 ? '' : 's'} in the trash.`;
    });
}

function renderRow(entry) {
    const denied = missing(KEYS_PATH, SYS_MODIFY);
    const restore = allowIf(h('button', {
        type: 'button', class: 'restore-trash', 'aria-label': `Restore key ${entry.id} from the trash`,
    }, 'Restore…'), denied);
    const purge = allowIf(h('button', {
        type: 'button', class: ['danger', 'purge-trash'], 'aria-label': `Purge key ${entry.id}`,
    }, 'Purge…'), denied);
    restore.addEventListener('click', () => openRestoreDialog(entry,
        (restored) => load(`Key ${entry.id} restored as ${restored ? restored.id : entry.id}.`)));
    purge.addEventListener('click', () => confirmPurge(entry, () => load(`Key ${entry.id} purged.`)));
    const cell = (label, content) => h('td', {'data-label': label}, content);
    return h('tr', {'data-trash-name': entry.name, 'data-key-id': entry.id},
        h('th', {scope: 'row', 'data-label': 'ID'}, h('span', {class: 'key-id'}, entry.id)),
        cell('Fingerprint', h('code', {class: 'fingerprint', title: entry.fingerprint},
            fingerprintLines(entry.fingerprint).map((line) => h('span', {}, line)))),
        cell('Removed', timeCell(entry.time)),
        cell('Removed by', entry.actor || NONE),
        cell('Reason', trashReason(entry)),
        cell('Purge after', entry['purge-after'] === undefined || entry['purge-after'] === null
            ? 'when purged by hand' : timeCell(entry['purge-after'])),
        cell('Verified copy', hasVerifiedCopy(entry)
            ? timeCell(entry['verified-copy'])
            : h('span', {class: 'no-copy'}, 'none: kept until purged by hand')),
        h('td', {class: 'actions', 'data-label': 'Actions'},
            h('div', {class: 'action-buttons'}, restore, purge)));
}
