// The audit view: the store's audit log (`GET /config/encryption-key-audit`,
// docs/audit.md), filtered by key and operation, newest first, one row
// per operation (its intent and outcome together), read in batches of the
// newest records and older ones on request, and the log's check
// (`GET /config/encryption-key-audit/verify`) as a badge: intact, or
// broken with the line where the chain breaks and what is wrong there.
// Both need Sys.Audit on /system/encryption-keys; the view writes nothing.

import {request} from './api.js';
import {h, loadingList, messageArea, uid} from './dom.js';
import {NONE, dateTime, isoTime, listing} from './format.js';
import {KEYS_PATH, SYS_AUDIT, missing} from './permissions.js';

const AUDIT = '/config/encryption-key-audit';

/** The operations a filter offers (docs/audit.md), key operations first. */
const OPERATIONS = [
    'create', 'import', 'archive', 'unarchive', 'delete', 'delete-purge', 'delete-force',
    'trash-restore', 'purge', 'export', 'export-verify', 'restore', 'paperkey', 'sync-job-keys',
    'rotate-plan', 'rotate-store-key', 'rotate-prove-export', 'rotate-switch-job',
    'rotate-archive-old-key', 'rotate-finish', 'rotate-abort',
    'rotate-abort-orphan',
    'repair-mode', 'repair-owner', 'repair-path', 'repair-orphan', 'repair-temp-file',
    'repair-stale-lock', 'repair-trash-record',
    'user-create', 'user-update', 'user-password', 'user-delete', 'token-create', 'token-update',
    'token-delete', 'acl-grant', 'acl-revoke',
];

/** The filter between renders. */
const filter = {id: '', operation: ''};

/**
 * The operations of `records` (oldest first): each intent with its
 * outcome (`intent` names the intent's seq); an outcome whose intent the
 * filter left out stands alone. Newest first.
 */
export function operations(records) {
    const outcomes = new Map();
    for (const record of records) {
        if (record.phase === 'outcome' && record.intent !== undefined) {
            outcomes.set(record.intent, record);
        }
    }
    const seen = new Set();
    const result = [];
    for (const record of records) {
        if (record.phase === 'outcome') {
            if (!seen.has(record.intent)) {
                result.push({intent: null, outcome: record, first: record});
            }
            continue;
        }
        seen.add(record.seq);
        result.push({intent: record, outcome: outcomes.get(record.seq) || null, first: record});
    }
    return result.reverse();
}

function resultBadge(operation) {
    if (!operation.outcome) {
        return h('span', {class: ['badge', 'tone-note']}, 'no outcome (interrupted)');
    }
    const result = operation.outcome.result;
    return result === 'ok'
        ? h('span', {class: ['badge', 'tone-good']}, 'ok')
        : h('span', {class: 'result-error'}, h('span', {class: ['badge', 'tone-bad']}, 'failed'), ' ', result);
}

/**
 * How many records the page reads at a time: the newest first, so that a
 * log of years neither fills the browser nor waits for all of it; "Show
 * older records" reads the next older batch, the filters narrow it.
 */
export const SHOWN_RECORDS = 2000;

/**
 * A batch as the list route answers a request for one record more than
 * `SHOWN_RECORDS` (oldest first): the newest `SHOWN_RECORDS` of them, and
 * whether the log has older ones (the extra record says so without a
 * request that finds nothing).
 */
function batchOf(records) {
    return records.length > SHOWN_RECORDS
        ? {records: records.slice(records.length - SHOWN_RECORDS), older: true}
        : {records, older: false};
}

/**
 * What the table shows: the records read so far (oldest first), the
 * request's parameters they were read with (a batch of older ones uses
 * the same, whatever the form says meanwhile), whether the log has older
 * ones, and the lines the check found broken.
 */
let shown = null;

/** How many unrecorded keys the page names; the API lists all. */
const UNRECORDED_NAMED = 10;

/** The keys the config lists that no record names, as a note (or null). */
function unrecordedNote(report) {
    const keys = report.unrecorded || [];
    if (keys.length === 0) {
        return null;
    }
    const named = keys.slice(0, UNRECORDED_NAMED).map((key) => key.id).join(', ');
    const more = keys.length > UNRECORDED_NAMED ? ` and ${keys.length - UNRECORDED_NAMED} more` : '';
    return h('p', {class: 'verify-unrecorded', 'data-count': keys.length},
        `No record names ${keys.length} listed key(s): ${named}${more}. They were stored before this log `
        + 'began (by upstream PBS or a copied config) or their records were removed; a checkpoint kept '
        + 'off the host tells which.');
}

/** The check of the log as a badge and its details. */
function verifyBadge(report) {
    const problems = report.problems || [];
    if (problems.length === 0) {
        const records = report.records === undefined ? '' : ` (${report.records} records)`;
        return h('div', {class: 'audit-verify', 'data-state': 'intact'},
            h('span', {class: ['badge', 'tone-good', 'verify-badge']}, `Chain intact${records}`),
            (report.notices || []).length
                ? h('ul', {class: 'verify-notices'}, report.notices.map((notice) => h('li', {},
                    typeof notice === 'string' ? notice : notice.message || notice.kind)))
                : null,
            unrecordedNote(report));
    }
    const first = problems.find((problem) => problem.line !== undefined && problem.line !== null) || problems[0];
    const where = first.line !== undefined && first.line !== null ? ` at line ${first.line}` : '';
    return h('div', {class: 'audit-verify', 'data-state': 'broken', 'data-line': first.line ?? ''},
        h('span', {class: ['badge', 'tone-bad', 'verify-badge']}, `Chain broken${where}`),
        h('ul', {class: 'verify-problems'}, problems.map((problem) => h('li', {},
            problem.line !== undefined && problem.line !== null ? `line ${problem.line}: ` : '',
            `${problem.kind ? `${problem.kind} - ` : ''}${problem.message || ''}`))),
        unrecordedNote(report));
}

let elements = null;

/** Renders the audit view into `container` and loads it. */
export function renderAudit(container) {
    const denied = missing(KEYS_PATH, SYS_AUDIT);
    const keyField = uid('audit-key');
    const keyList = uid('audit-keys');
    const key = h('input', {
        id: keyField, name: 'id', type: 'text', list: keyList, autocomplete: 'off', autocapitalize: 'off',
        spellcheck: 'false', value: filter.id, placeholder: 'all keys',
    });
    const datalist = h('datalist', {id: keyList});
    const opField = uid('audit-op');
    const operation = h('select', {id: opField, name: 'operation'},
        h('option', {value: ''}, 'all operations'),
        OPERATIONS.map((op) => h('option', {value: op}, op)));
    operation.value = filter.operation;
    const apply = h('button', {type: 'submit', class: 'primary', id: 'audit-apply'}, 'Show');
    const status = h('p', {class: 'list-status', role: 'status'});
    const listMessage = messageArea('list-error');
    const verifyArea = h('div', {class: 'verify-area', 'aria-live': 'polite'});
    const progress = h('progress', {class: 'list-progress', hidden: true, 'aria-label': 'Loading the audit log'});
    const body = h('tbody');
    const older = h('button', {type: 'button', id: 'audit-older', hidden: true}, 'Show older records');
    const table = h('table', {class: ['keys', 'audit'], id: 'audit-table'},
        h('caption', {class: 'visually-hidden'}, 'Audit log, newest first'),
        h('thead', {}, h('tr', {},
            ['Line', 'Time', 'Operation', 'Keys', 'Who', 'Result'].map((title) => h('th', {scope: 'col'}, title)))),
        body);
    const form = h('form', {class: 'toolbar audit-filter', role: 'search', 'aria-label': 'Filter the audit log'},
        h('div', {class: 'field inline'}, h('label', {for: keyField}, 'Key'), key, datalist),
        h('div', {class: 'field inline'}, h('label', {for: opField}, 'Operation'), operation),
        apply);
    elements = {body, table, status, listMessage, progress, apply, older, verifyArea, datalist};
    container.replaceChildren(h('section', {class: 'view audit-view', 'aria-labelledby': 'audit-title'},
        h('h1', {id: 'audit-title'}, 'Audit log'),
        h('p', {class: 'intro'},
            'Every change to the key store, every export, paper key and restore, as the hash-chained log '
            + 'records it. The check below recomputes the chain and its signed checkpoint.'),
        verifyArea,
        form,
        listMessage.el,
        progress,
        status,
        h('div', {class: 'table-wrap'}, table),
        h('div', {class: 'list-more'}, older)));
    form.addEventListener('submit', (event) => {
        event.preventDefault();
        filter.id = key.value.trim();
        filter.operation = operation.value;
        load();
    });
    older.addEventListener('click', () => loadOlder());
    if (denied) {
        listMessage.error(`You cannot read the audit log (${denied}).`);
        apply.disabled = true;
        apply.title = denied;
        return Promise.resolve();
    }
    return load();
}

/** Checks the log into `area`; resolves to the lines it finds broken. */
async function loadVerify(area) {
    area.replaceChildren(h('p', {class: 'list-status'}, 'Checking the log…'));
    try {
        const report = (await request('GET', `${AUDIT}/verify`)).data || {};
        area.replaceChildren(verifyBadge(report));
        return new Set((report.problems || []).map((problem) => problem.line).filter((line) => line !== undefined));
    } catch (err) {
        area.replaceChildren(h('p', {class: 'message error'}, `Checking the log failed: ${err.message}`));
        return new Set();
    }
}

async function load() {
    if (!elements || !elements.table.isConnected) {
        return;
    }
    const {table, listMessage, progress, apply, verifyArea, datalist} = elements;
    const busy = {table, progress, button: apply, message: listMessage};
    const params = {id: filter.id || undefined, operation: filter.operation || undefined};
    await loadingList(busy, 'the audit log', async () => {
        const [answer, keys, broken] = await Promise.all([
            request('GET', AUDIT, {...params, limit: SHOWN_RECORDS + 1}),
            request('GET', '/config/encryption-keys', {'include-archived': 1}).catch(() => null),
            loadVerify(verifyArea),
        ]);
        if (keys) {
            datalist.replaceChildren(...(keys.data || []).map((k) => h('option', {value: k.id})));
        }
        const batch = batchOf(answer.data || []);
        shown = {params, records: batch.records, older: batch.older, broken};
        renderShown();
    });
}

/**
 * Reads the next older batch: the same parameters, records before the
 * oldest shown by `seq` (records of one second share their `time`, never
 * their `seq`: none is skipped or shown twice), and adds them.
 *
 * The focus, if it was on the button, goes back to it while the log has
 * older records (`loadingList` does that); once the last batch hides the
 * button, to the first row that batch added (the table if it added none):
 * a keyboard user reads on from where the list grew. A focus moved
 * elsewhere meanwhile stays there.
 */
async function loadOlder() {
    const current = shown;
    if (!elements || !elements.table.isConnected || !current || current.records.length === 0) {
        return;
    }
    const {body, table, listMessage, progress, older} = elements;
    const busy = {table, progress, button: older, message: listMessage};
    const before = current.records[0].seq;
    const hadFocus = document.activeElement === older;
    let added = false;
    await loadingList(busy, 'older records', async () => {
        const answer = await request('GET', AUDIT, {
            ...current.params, limit: SHOWN_RECORDS + 1, 'before-seq': before,
        });
        if (shown !== current) {
            return; // the filters were applied again meanwhile
        }
        const batch = batchOf(answer.data || []);
        shown = {...current, records: batch.records.concat(current.records), older: batch.older};
        renderShown();
        added = true;
    });
    // on the hidden button until the browser moves it to the page
    const lost = [null, document.body, older].includes(document.activeElement);
    if (!hadFocus || !lost || !older.hidden || !added || !table.isConnected) {
        return;
    }
    // rows are newest first: the first one older than the batch before
    // (an operation whose outcome was shown alone is one row again, here)
    const target = Array.from(body.rows).find((row) => Number(row.dataset.seq) < before) || table;
    target.setAttribute('tabindex', '-1');
    target.focus();
}

/** The records read so far as rows (an intent and its outcome read in two batches are one row again). */
function renderShown() {
    const {body, status, older} = elements;
    const {params, records, broken} = shown;
    const ops = operations(records);
    body.replaceChildren(...(ops.length
        ? ops.map((operation) => renderRow(operation, broken))
        : [h('tr', {class: 'empty'}, h('td', {colspan: 6}, 'No records match.'))]));
    const what = [params.id && `key ${params.id}`, params.operation].filter(Boolean).join(', ');
    const more = shown.older
        ? ` The newest ${records.length} records only: "Show older records" reads the ${SHOWN_RECORDS} before them.`
        : '';
    status.textContent = `${ops.length} operation${ops.length === 1 ? '' : 's'}${what ? ` (${what})` : ''}.${more}`;
    older.hidden = !shown.older;
}

/** One operation; marked where the check found a line of it broken. */
function renderRow(operation, broken) {
    const record = operation.first;
    const seqs = [operation.intent, operation.outcome].filter(Boolean).map((r) => r.seq);
    const iso = isoTime(record.time);
    const lines = operation.intent && operation.outcome
        ? `${operation.intent.seq}–${operation.outcome.seq}` : String(record.seq);
    const who = [record.actor, record['unix-user'] ? `(${record['unix-user']})` : null].filter(Boolean).join(' ');
    return h('tr', {
        'data-seq': record.seq, 'data-op': record.op,
        class: seqs.some((seq) => broken.has(seq)) ? 'broken' : null,
    },
        h('th', {scope: 'row', 'data-label': 'Line'}, lines),
        h('td', {'data-label': 'Time'}, iso ? h('time', {datetime: iso}, dateTime(record.time)) : NONE),
        h('td', {'data-label': 'Operation'}, h('code', {class: 'op'}, record.op),
            record.job ? ` (sync job ${record.job})` : ''),
        h('td', {'data-label': 'Keys'}, listing(record.ids || []) || NONE),
        h('td', {'data-label': 'Who'}, who || NONE, h('span', {class: 'origin'}, record.origin || '')),
        h('td', {'data-label': 'Result', class: 'state'}, resultBadge(operation)));
}
