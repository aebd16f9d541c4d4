// The keys view: upstream's columns (id, type, hint, fingerprint,
// created, archived) plus state, the jobs that use a key, its last export
// and its last verified restore; add (generate, upload a key file or type
// a paper key), archive and unarchive, remove after typing the id, export
// the selected or all keys. The keys in the trash are rows too ("in
// trash", with their purge date), restored from here or the trash view.
// Every change sends the digest of the list it was made on, so a change
// made on a stale view is refused.
//
// Controls the user's privileges do not allow are disabled and say which
// privilege is missing; errors appear in the server's words next to the
// action that caused them.

import {request} from './api.js';
import {confirmByTyping, openDialog} from './dialog.js';
import {allowIf, clear, h, loadingList, messageArea, uid, whileBusy} from './dom.js';
import {openExportDialog} from './export.js';
import {NONE, dateTime, fingerprintLines, isoTime, jobsOf, keyType, listing, usedBy} from './format.js';
import {KEYS_PATH, SYS_AUDIT, SYS_MODIFY, keyPath, missing} from './permissions.js';
import {showSaveKeyDialog} from './savekey.js';
import {loadTrash, openRestoreDialog, purgeText} from './trash.js';

const LIST = '/config/encryption-keys';

/** The columns: header, and the cell content of a key. */
const COLUMNS = [
    ['ID', (key) => h('span', {class: 'key-id'}, key.id)],
    ['State', (key) => stateBadge(key)],
    ['Type', (key) => keyType(key.kdf)],
    ['Hint', (key) => key.hint || NONE],
    ['Fingerprint', (key) => h('code', {class: 'fingerprint', title: key.fingerprint},
        fingerprintLines(key.fingerprint).map((line) => h('span', {}, line)))],
    ['Created', (key) => timeCell(key.created)],
    ['Archived', (key) => timeCell(key['archived-at'])],
    ['Used by', (key) => usedByCell(key)],
    // from the audit log (the list's audit-marks, as the show route tells them)
    ['Last export', (key) => markCell(key['last-exported'])],
    ['Last verified restore', (key) => markCell(key['last-export-verify'])],
];

/** An audit mark (`{time, actor, origin, op, seq}`): when, and who in its tooltip. */
function markCell(mark) {
    if (!mark || !isoTime(mark.time)) {
        return NONE;
    }
    return h('time', {
        class: 'mark', datetime: isoTime(mark.time),
        title: `${mark.actor} (${mark.origin}), audit log line ${mark.seq}`,
    },
        dateTime(mark.time));
}

function usedByCell(key) {
    const jobs = usedBy(key);
    return jobs.length ? h('span', {class: 'jobs'}, jobs.map((job) => h('span', {}, job))) : NONE;
}

/**
 * Why the server would refuse to archive (`toggle`) or remove key `key`
 * in its state and with the sync jobs that name it, in words; null where
 * it would not.
 */
function stateRefusals(key) {
    const {active, associated} = jobsOf(key);
    const jobs = (ids) => `sync job${ids.length === 1 ? '' : 's'} ${listing(ids)}`;
    if (keyState(key) === 'active') {
        return {
            toggle: active.length
                ? `Used to encrypt by ${jobs(active)} - give ${active.length === 1 ? 'it' : 'them'} another key first`
                : null,
            remove: 'Only archived keys can be removed - archive the key first',
        };
    }
    const naming = [...active, ...associated];
    return {
        toggle: null,
        remove: naming.length
            ? `Still named by ${jobs(naming)} - remove it from ${naming.length === 1 ? 'that job' : 'those jobs'} first`
            : null,
    };
}

function timeCell(epoch) {
    const iso = isoTime(epoch);
    return iso ? h('time', {datetime: iso}, dateTime(epoch)) : NONE;
}

/** The key's state: active, archived or in trash. */
export function keyState(key) {
    if (key.trash) {
        return 'in trash';
    }
    return key['archived-at'] ? 'archived' : 'active';
}

function stateBadge(key) {
    const state = keyState(key);
    const badge = h('span', {class: ['badge', `state-${state.replace(' ', '-')}`]}, state);
    return key.trash
        ? h('span', {class: 'state-trash'}, badge, h('span', {class: 'purge-date'}, purgeText(key.trash)))
        : badge;
}

/** A trash entry as a row of the list: the config entry it had, in trash. */
function trashRow(entry) {
    return {...(entry.entry || {}), id: entry.id, fingerprint: entry.fingerprint, trash: entry};
}

/** The view's state between renders. */
const view = {
    keys: [],
    trash: [],
    digest: null,
    showArchived: true,
    showTrash: true,
    selected: new Set(),
    loaded: false,
};

let elements = null;

/** Renders the view into `container` and loads the list. */
export function renderKeys(container) {
    const createDenied = missing(KEYS_PATH, SYS_MODIFY);
    const addButton = allowIf(h('button', {type: 'button', class: 'primary', id: 'add-key'}, 'Add key…'),
        createDenied);
    const archivedId = uid('show-archived');
    const showArchived = h('input', {id: archivedId, type: 'checkbox', checked: view.showArchived});
    const refreshButton = h('button', {type: 'button', id: 'refresh-keys'}, 'Refresh');
    const exportButton = h('button', {type: 'button', id: 'export-keys'}, 'Export…');
    const trashId = uid('show-trash');
    const showTrash = allowIf(h('input', {id: trashId, type: 'checkbox', checked: view.showTrash}),
        missing(KEYS_PATH, SYS_AUDIT));
    const status = h('p', {class: 'list-status', role: 'status'});
    const listMessage = messageArea('list-error');
    const progress = h('progress', {class: 'list-progress', hidden: true, 'aria-label': 'Loading keys'});
    const body = h('tbody');
    const table = h('table', {class: 'keys', id: 'keys-table'},
        h('caption', {class: 'visually-hidden'}, 'Encryption keys'),
        h('thead', {}, h('tr', {},
            h('th', {scope: 'col', class: 'select'}, h('span', {class: 'visually-hidden'}, 'Select for export')),
            COLUMNS.map(([title]) => h('th', {scope: 'col'}, title)),
            h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Actions')))),
        body);
    elements = {body, table, status, listMessage, progress, refreshButton, exportButton};

    container.replaceChildren(h('section', {class: 'view keys-view', 'aria-labelledby': 'keys-title'},
        h('h1', {id: 'keys-title'}, 'Encryption Keys'),
        h('div', {class: 'toolbar', role: 'toolbar', 'aria-label': 'Key actions'},
            addButton,
            exportButton,
            refreshButton,
            h('label', {class: 'check', for: archivedId}, showArchived, 'Show archived keys'),
            h('label', {class: 'check', for: trashId}, showTrash, 'Show keys in the trash')),
        createDenied
            ? h('p', {class: 'message notice readonly-note'},
                `Read-only: you can see keys but not add, archive or remove them (${createDenied}).`)
            : null,
        listMessage.el,
        progress,
        status,
        h('div', {class: 'table-wrap'}, table)));

    addButton.addEventListener('click', () => openAddDialog());
    refreshButton.addEventListener('click', () => load());
    showArchived.addEventListener('change', () => {
        view.showArchived = showArchived.checked;
        load();
    });
    showTrash.addEventListener('change', () => {
        view.showTrash = showTrash.checked;
        load();
    });
    exportButton.addEventListener('click', () => openExportDialog(
        view.keys.filter((key) => view.selected.has(key.id)), view.keys,
        () => load()));
    if (view.loaded) {
        renderRows();
    }
    return load();
}

/** Loads the list (with progress), then renders its rows. */
async function load(announce) {
    if (!elements) {
        return;
    }
    const {table, listMessage, progress, refreshButton, status} = elements;
    const busy = {table, progress, button: refreshButton, message: listMessage};
    await loadingList(busy, 'the keys', async () => {
        const [answer, trash] = await Promise.all([
            // each key with its audit marks (last export, last restore
            // drill), read by the server in one pass over the log
            request('GET', LIST, {'include-archived': view.showArchived ? 1 : 0, 'audit-marks': 1}),
            view.showTrash ? loadTrash() : null,
        ]);
        view.keys = (answer.data || []).sort((a, b) => a.id.localeCompare(b.id));
        view.trash = (trash || []).map(trashRow);
        view.digest = answer.digest || null;
        const ids = new Set(view.keys.map((key) => key.id));
        view.selected = new Set([...view.selected].filter((id) => ids.has(id)));
        view.loaded = true;
        renderRows();
        const inTrash = view.trash.length ? `, ${view.trash.length} in the trash` : '';
        // what this host's loss would lose: no restore drill proved a copy
        const uncopied = view.keys.filter((key) => !key['last-export-verify']).length;
        const unproven = uncopied ? `, ${uncopied} without a verified copy` : '';
        status.textContent = announce
            || `${view.keys.length} key${view.keys.length === 1 ? '' : 's'}${unproven}${inTrash}.`;
    });
}

/**
 * Export is for keys the user holds Sys.Modify on: the button is
 * disabled when there is none, naming the privilege.
 */
function exportRefusal() {
    if (view.keys.some((key) => !missing(keyPath(key.id), SYS_MODIFY))) {
        return null;
    }
    return missing(KEYS_PATH, SYS_MODIFY) || 'No key to export';
}

function renderRows() {
    const {body, exportButton} = elements;
    clear(body);
    allowIf(exportButton, exportRefusal());
    exportButton.textContent = view.selected.size ? `Export ${view.selected.size} selected…` : 'Export…';
    if (view.keys.length === 0) {
        body.append(h('tr', {class: 'empty'},
            h('td', {colspan: COLUMNS.length + 2}, view.showArchived
                ? 'No encryption keys yet.'
                : 'No active encryption keys. Show archived keys to see the others.')));
    }
    for (const key of view.keys) {
        body.append(renderRow(key));
    }
    for (const key of view.trash) {
        body.append(renderTrashRow(key));
    }
}

/** The checkbox that selects key `key` for the export. */
function selectCell(key) {
    const box = allowIf(h('input', {
        type: 'checkbox', class: 'select-key', checked: view.selected.has(key.id),
        'aria-label': `Select key ${key.id} for export`,
    }), missing(keyPath(key.id), SYS_MODIFY));
    box.addEventListener('change', () => {
        if (box.checked) {
            view.selected.add(key.id);
        } else {
            view.selected.delete(key.id);
        }
        const {exportButton} = elements;
        exportButton.textContent = view.selected.size ? `Export ${view.selected.size} selected…` : 'Export…';
    });
    return h('td', {class: 'select', 'data-label': 'Export'}, box);
}

/** A key in the trash: its state and purge date; restore it from here. */
function renderTrashRow(key) {
    const entry = key.trash;
    const restore = allowIf(h('button', {
        type: 'button', class: 'restore-trash', 'aria-label': `Restore key ${key.id} from the trash`,
    }, 'Restore…'), missing(KEYS_PATH, SYS_MODIFY));
    restore.addEventListener('click', () => openRestoreDialog(entry,
        (restored) => load(`Key ${key.id} restored as ${restored ? restored.id : key.id}.`)));
    return h('tr', {'data-trash-name': entry.name, 'data-trash-id': key.id, class: 'in-trash'},
        h('td', {class: 'select', 'data-label': 'Export'}, NONE),
        COLUMNS.map(([title, cell], index) => h(index === 0 ? 'th' : 'td',
            {'data-label': title, scope: index === 0 ? 'row' : null},
            title === 'Used by' ? NONE : cell(key))),
        h('td', {class: 'actions', 'data-label': 'Actions'},
            h('div', {class: 'action-buttons'}, restore)));
}

function renderRow(key) {
    const denied = missing(keyPath(key.id), SYS_MODIFY);
    const archived = keyState(key) === 'archived';
    const refusals = stateRefusals(key);
    const message = messageArea('row-error');
    const toggle = allowIf(h('button', {
        type: 'button', class: 'toggle-archive',
        'aria-label': `${archived ? 'Unarchive' : 'Archive'} key ${key.id}`,
    }, archived ? 'Unarchive' : 'Archive'), denied || refusals.toggle);
    const remove = allowIf(h('button', {
        type: 'button', class: ['danger', 'remove-key'], 'aria-label': `Remove key ${key.id}`,
    }, 'Remove…'), denied || refusals.remove);

    toggle.addEventListener('click', async () => {
        message.clear();
        try {
            await whileBusy(toggle, archived ? 'Unarchiving…' : 'Archiving…',
                () => request('POST', `${LIST}/${encodeURIComponent(key.id)}`, {digest: view.digest}));
            await load(`Key ${key.id} ${archived ? 'unarchived' : 'archived'}.`);
            // the row was drawn anew: keep the keyboard where it was
            const again = elements.body.querySelector(
                `tr[data-key-id="${CSS.escape(key.id)}"] .toggle-archive`);
            if (again) {
                again.focus();
            }
        } catch (err) {
            message.error(err.message);
        }
    });
    remove.addEventListener('click', () => {
        message.clear();
        confirmByTyping({
            title: `Remove encryption key ${key.id}`,
            text: `This removes '${key.id}' from the key store into the server's trash, from `
                + 'where it can be restored until its keep time is over; then the daily purge destroys it '
                + 'if a verified copy of it is recorded (else it stays until purged by hand). '
                + 'Backups encrypted with it cannot be restored without the key.',
            expected: key.id,
            actionLabel: 'Remove key',
            busyLabel: 'Removing…',
            action: async () => {
                await request('DELETE', `${LIST}/${encodeURIComponent(key.id)}`, {digest: view.digest});
                await load(`Key ${key.id} removed.`);
            },
        });
    });

    return h('tr', {'data-key-id': key.id, class: archived ? 'archived' : null},
        selectCell(key),
        COLUMNS.map(([title, cell], index) => h(index === 0 ? 'th' : 'td',
            {'data-label': title, scope: index === 0 ? 'row' : null}, cell(key))),
        h('td', {class: 'actions', 'data-label': 'Actions'},
            h('div', {class: 'action-buttons'}, toggle, remove), message.el));
}

/**
 * The add dialog: generate a key, upload a key file, or type (or paste) a
 * paper key: its BEGIN/END block or its typing-aid lines, which the server
 * reads and checks line by line (docs/export-format.md).
 */
function openAddDialog() {
    const idField = uid('key-id');
    const fileField = uid('key-file');
    const id = h('input', {
        id: idField, name: 'id', type: 'text', required: true, autocomplete: 'off',
        autocapitalize: 'off', spellcheck: 'false', 'aria-describedby': `${idField}-hint`,
    });
    const generate = h('input', {type: 'radio', name: 'source', value: 'generate', checked: true, id: uid('gen')});
    const upload = h('input', {type: 'radio', name: 'source', value: 'upload', id: uid('up')});
    const paper = h('input', {type: 'radio', name: 'source', value: 'paperkey', id: uid('paper')});
    const paperField = uid('key-paper');
    const paperText = h('textarea', {
        id: paperField, name: 'paperkey', rows: 8, spellcheck: 'false', autocomplete: 'off',
        autocapitalize: 'off', class: 'paperkey-text', 'aria-describedby': `${paperField}-hint`,
    });
    const paperBlock = h('div', {class: 'field paperkey-field', hidden: true},
        h('label', {for: paperField}, 'Paper key'),
        paperText,
        h('p', {id: `${paperField}-hint`, class: 'hint'},
            'The lines between -----BEGIN PROXMOX BACKUP KEY----- and -----END PROXMOX BACKUP KEY-----, '
            + "or the typing aid's numbered lines (01: 0100 3b01 … - e5f8), each with its checksum: "
            + 'a mistyped line is named.'));
    const file = h('input', {
        id: fileField, type: 'file', accept: '.enc,.json,application/json',
        'aria-describedby': `${fileField}-hint`,
    });
    const passphraseField = uid('key-passphrase');
    const passphrase = h('input', {
        id: passphraseField, name: 'passphrase', type: 'password', autocomplete: 'off',
        'aria-describedby': `${passphraseField}-hint`,
    });
    const fileBlock = h('div', {class: 'upload-field', hidden: true},
        h('div', {class: 'field'},
            h('label', {for: fileField}, 'Key file'),
            file,
            h('p', {id: `${fileField}-hint`, class: 'hint'},
                'A key file (.enc) as proxmox-backup-client writes it.')));
    const passphraseBlock = h('div', {class: 'passphrase-field', hidden: true},
        h('div', {class: 'field'},
            h('label', {for: passphraseField}, 'Passphrase'),
            passphrase,
            h('p', {id: `${passphraseField}-hint`, class: 'hint'},
                'Only for a key protected by a passphrase. The server checks the key '
                + 'against its fingerprint and stores it unprotected, for unattended use.')));
    const message = messageArea('add-error');
    const cancel = h('button', {type: 'button', class: 'secondary'}, 'Cancel');
    const submit = h('button', {type: 'submit', class: 'primary'}, 'Add key');
    const form = h('form', {class: 'add-form', novalidate: true},
        h('div', {class: 'field'},
            h('label', {for: idField}, 'Key ID'),
            id,
            h('p', {id: `${idField}-hint`, class: 'hint'},
                "3 to 32 letters, digits, '_', '.' or '-'; not starting with '.' or '-'.")),
        h('fieldset', {class: 'source'},
            h('legend', {}, 'Key'),
            h('label', {class: 'check', for: generate.id}, generate, 'Generate a new key'),
            h('label', {class: 'check', for: upload.id}, upload, 'Upload a key file'),
            h('label', {class: 'check', for: paper.id}, paper, 'Type or paste a paper key')),
        fileBlock,
        paperBlock,
        passphraseBlock,
        message.el,
        h('div', {class: 'dialog-actions'}, cancel, submit));
    const {dialog, close} = openDialog({title: 'Add encryption key', body: [form], className: 'add-key'});
    const sourceChanged = () => {
        fileBlock.hidden = !upload.checked;
        paperBlock.hidden = !paper.checked;
        passphraseBlock.hidden = generate.checked;
        submit.textContent = {generate: 'Generate key', upload: 'Upload key', paperkey: 'Add key'}[source()];
    };
    const source = () => [generate, upload, paper].find((radio) => radio.checked).value;
    generate.addEventListener('change', sourceChanged);
    upload.addEventListener('change', sourceChanged);
    paper.addEventListener('change', sourceChanged);
    sourceChanged();
    cancel.addEventListener('click', close);
    id.focus();

    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        message.clear();
        const keyId = id.value.trim();
        if (!keyId) {
            message.error('Enter an ID for the key.');
            id.focus();
            return;
        }
        const how = source();
        if (how === 'upload' && file.files.length === 0) {
            message.error('Choose a key file to upload.');
            file.focus();
            return;
        }
        if (how === 'paperkey' && !paperText.value.trim()) {
            message.error('Type or paste the paper key.');
            paperText.focus();
            return;
        }
        const busy = {generate: 'Generating…', upload: 'Uploading…', paperkey: 'Adding…'}[how];
        try {
            const created = await whileBusy(submit, busy, async () => {
                const params = {id: keyId};
                if (how !== 'generate') {
                    params.key = how === 'upload' ? await file.files[0].text() : paperText.value;
                    if (passphrase.value) {
                        params.passphrase = passphrase.value;
                    }
                }
                return (await request('POST', LIST, params)).data;
            }, dialog);
            paperText.value = '';
            close();
            const done = load(`Key ${keyId} ${{generate: 'created', upload: 'uploaded', paperkey: 'added'}[how]}.`);
            if (how === 'generate') {
                await showSaveKeyDialog(keyId, created);
            }
            await done;
        } catch (err) {
            message.error(err.message);
        }
    });
}
