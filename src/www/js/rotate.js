// The rotation view: the sync jobs that encrypt with a key
// (`GET /config/sync`) and the rotations in progress
// (`GET /config/encryption-key-rotate`, their journals). A rotate dialog
// per push job shows the plan (the jobs that share its key, the old key,
// the new id, archive the old key, export the new one) and each step's
// progress while `POST /config/encryption-key-rotate` runs (the journal's
// step, polled); a rotation that stopped (a crash, an error) is resumed
// from its journal with the same plan, or aborted before its jobs switch
// (`POST /config/encryption-key-rotate/abort`: the new key goes into the
// trash). An export of the new key comes in the answer and leaves the
// page only as a download, like Export's bundle. The steps are
// docs/keystore.md, "Key rotation".

import {request} from './api.js';
import {confirmByTyping, openDialog} from './dialog.js';
import {allowIf, h, loadingList, messageArea, offerDownload, uid, whileBusy} from './dom.js';
import {passphraseFields} from './export.js';
import {NONE, dateTime, listing} from './format.js';
import {KEYS_PATH, SYS_MODIFY, missing} from './permissions.js';

const ROTATE = '/config/encryption-key-rotate';

/** The journal's steps in order, and how the dialog names them. */
const STEPS = [
    ['planned', 'Plan recorded'],
    ['key-stored', 'New key generated and stored'],
    ['export-proven', 'Export of the new key proven by the restore drill'],
    ['jobs-switched', 'Jobs switched to the new key (the old one kept to decrypt)'],
    ['old-key-archived', 'Old key archived'],
];

/** How far a journal got: the index of its step in STEPS. */
function stepIndex(step) {
    return STEPS.findIndex(([name]) => name === step);
}

/** The steps a plan runs: export and archive only when asked for. */
function planSteps(withExport, archiveOld) {
    return STEPS.filter(([name]) => (name !== 'export-proven' || withExport)
        && (name !== 'old-key-archived' || archiveOld));
}

/** `jobs-YYYY-MM-DD` as the server names a new key by default. */
function defaultNewId(job) {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, '0');
    return `${job}-${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

function direction(job) {
    return job['sync-direction'] || 'pull';
}

let elements = null;
const state = {jobs: [], journals: []};

/** Renders the rotation view into `container` and loads it. */
export function renderRotate(container) {
    const refresh = h('button', {type: 'button', id: 'refresh-rotate'}, 'Refresh');
    const status = h('p', {class: 'list-status', role: 'status'});
    const listMessage = messageArea('list-error');
    const progress = h('progress', {class: 'list-progress', hidden: true, 'aria-label': 'Loading the sync jobs'});
    const running = h('div', {class: 'rotations'});
    const body = h('tbody');
    const table = h('table', {class: ['keys', 'jobs-table'], id: 'jobs-table'},
        h('caption', {class: 'visually-hidden'}, 'Sync jobs and their keys'),
        h('thead', {}, h('tr', {},
            ['Job', 'Direction', 'Store', 'Active key', 'Associated keys'].map((title) => h('th', {scope: 'col'}, title)),
            h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Actions')))),
        body);
    elements = {body, table, status, listMessage, progress, refresh, running};
    const denied = missing(KEYS_PATH, SYS_MODIFY);
    container.replaceChildren(h('section', {class: 'view rotate-view', 'aria-labelledby': 'rotate-title'},
        h('h1', {id: 'rotate-title'}, 'Key rotation'),
        h('p', {class: 'intro'},
            'A rotation gives push jobs that share a key a new one: it stores a new key, optionally exports it '
            + 'and proves the export, switches the jobs (the old key stays associated, to decrypt older backups) '
            + 'and optionally archives the old key. A journal records each step, so a rotation that stopped is '
            + 'resumed where it stopped.'),
        h('div', {class: 'toolbar', role: 'toolbar', 'aria-label': 'Rotation actions'}, refresh),
        denied ? h('p', {class: 'message notice readonly-note'},
            `Read-only: rotating needs ${SYS_MODIFY} on ${KEYS_PATH}, which you do not hold.`) : null,
        listMessage.el,
        running,
        progress,
        status,
        h('div', {class: 'table-wrap'}, table)));
    refresh.addEventListener('click', () => load());
    return load();
}

async function load(announce) {
    if (!elements || !elements.table.isConnected) {
        return;
    }
    const {body, table, status, listMessage, progress, refresh, running} = elements;
    const busy = {table, progress, button: refresh, message: listMessage};
    await loadingList(busy, 'the sync jobs', async () => {
        const [jobs, journals] = await Promise.all([
            request('GET', '/config/sync', {'sync-direction': 'all'}),
            request('GET', ROTATE),
        ]);
        state.jobs = (jobs.data || []).slice().sort((a, b) => a.id.localeCompare(b.id));
        state.journals = journals.data || [];
        running.replaceChildren(...renderJournals());
        const keyed = state.jobs.filter((job) => job['active-encryption-key']);
        body.replaceChildren(...(keyed.length
            ? keyed.map(renderJob)
            : [h('tr', {class: 'empty'}, h('td', {colspan: 6}, 'No sync job encrypts with a key.'))]));
        status.textContent = announce || `${keyed.length} sync job${keyed.length === 1 ? '' : 's'} with a key`
            + (state.journals.length ? `, ${state.journals.length} rotation${state.journals.length === 1 ? '' : 's'} in progress.` : '.');
    });
}

/** The journal naming `job`, if a rotation of it is in progress. */
function journalOf(job) {
    return state.journals.find((journal) => (journal.jobs || []).includes(job)) || null;
}

function renderJournals() {
    if (state.journals.length === 0) {
        return [];
    }
    const denied = missing(KEYS_PATH, SYS_MODIFY);
    return [h('section', {class: 'in-progress', 'aria-labelledby': 'in-progress-title'},
        h('h2', {id: 'in-progress-title'}, 'Rotations in progress'),
        state.journals.map((journal) => {
            const switched = stepIndex(journal.step) >= stepIndex('jobs-switched');
            const resume = allowIf(h('button', {
                type: 'button', class: ['primary', 'resume-rotation'],
                'aria-label': `Resume the rotation of ${listing(journal.jobs)}`,
            }, 'Resume…'), denied || (journal.aborting ? 'An abort is in progress - abort again to finish it' : null));
            const abort = allowIf(h('button', {
                type: 'button', class: ['danger', 'abort-rotation'],
                'aria-label': `Abort the rotation of ${listing(journal.jobs)}`,
            }, 'Abort…'), denied || (switched
                ? 'The jobs encrypt with the new key already - new backups need it, resume instead' : null));
            resume.addEventListener('click', () => openRotateDialog({journal}));
            abort.addEventListener('click', () => confirmByTyping({
                title: `Abort the rotation of ${listing(journal.jobs)}`,
                text: `This stops the rotation and moves the new key '${journal['new-key']}' into the trash; `
                    + `the jobs keep encrypting with '${journal['old-key']}'.`,
                expected: journal['new-key'],
                actionLabel: 'Abort rotation',
                busyLabel: 'Aborting…',
                action: async () => {
                    await request('POST', `${ROTATE}/abort`, {job: journal.jobs[0]});
                    await load(`Rotation of ${listing(journal.jobs)} aborted; ${journal['new-key']} is in the trash.`);
                },
            }));
            const step = STEPS.find(([name]) => name === journal.step);
            return h('div', {class: 'journal', 'data-jobs': journal.jobs.join(' ')},
                h('p', {},
                    h('strong', {}, listing(journal.jobs)), `: ${journal['old-key']} → ${journal['new-key']}. `,
                    `Last step done: ${step ? step[1] : journal.step}`,
                    journal.aborting ? ' (being aborted)' : '',
                    `. Started ${dateTime(journal.started)} by ${journal.actor}.`),
                h('div', {class: 'action-buttons'}, resume, abort));
        }))];
}

function renderJob(job) {
    const denied = missing(KEYS_PATH, SYS_MODIFY);
    const journal = journalOf(job.id);
    const refusal = denied
        || (direction(job) !== 'push' ? 'Only push jobs encrypt what they send: this job pulls' : null)
        || (journal ? `A rotation of this job is in progress (to ${journal['new-key']}) - resume or abort it` : null);
    const rotate = allowIf(h('button', {
        type: 'button', class: 'rotate-key', 'aria-label': `Rotate the key of sync job ${job.id}`,
    }, 'Rotate key…'), refusal);
    rotate.addEventListener('click', () => openRotateDialog({job}));
    return h('tr', {'data-job': job.id},
        h('th', {scope: 'row', 'data-label': 'Job'}, job.id),
        h('td', {'data-label': 'Direction'}, direction(job)),
        h('td', {'data-label': 'Store'}, `${job.store || NONE} → ${job.remote ? `${job.remote}:` : ''}${job['remote-store'] || NONE}`),
        h('td', {'data-label': 'Active key'}, h('span', {class: 'key-id'}, job['active-encryption-key'])),
        h('td', {'data-label': 'Associated keys'}, listing(job['associated-key'] || []) || NONE),
        h('td', {class: 'actions', 'data-label': 'Actions'}, h('div', {class: 'action-buttons'}, rotate)));
}

/**
 * The rotate dialog: a new rotation of `job` (and the push jobs sharing
 * its key), or the resumption of `journal` with its plan.
 */
function openRotateDialog({job, journal}) {
    const resuming = Boolean(journal);
    const oldKey = resuming ? journal['old-key'] : job['active-encryption-key'];
    const sharing = resuming ? journal.jobs : state.jobs
        .filter((other) => direction(other) === 'push' && other['active-encryption-key'] === oldKey
            && !journalOf(other.id))
        .map((other) => other.id);
    const jobBoxes = sharing.map((id) => h('input', {
        type: 'checkbox', name: 'job', value: id, id: uid('rotate-job'), checked: true,
        disabled: resuming || id === (job && job.id),
    }));
    const newIdField = uid('rotate-new-id');
    const firstJob = resuming ? journal.jobs[0] : job.id;
    const newId = h('input', {
        id: newIdField, name: 'new-id', type: 'text', autocomplete: 'off', autocapitalize: 'off',
        spellcheck: 'false', placeholder: defaultNewId(firstJob), disabled: resuming,
        value: resuming ? journal['new-key'] : '',
    });
    const archiveId = uid('rotate-archive');
    const archiveOld = h('input', {
        id: archiveId, type: 'checkbox', name: 'archive-old', checked: resuming ? Boolean(journal['archive-old']) : false,
        disabled: resuming,
    });
    const exportId = uid('rotate-export');
    const journalExport = resuming && journal.export;
    const exportBox = h('input', {
        id: exportId, type: 'checkbox', name: 'export', checked: resuming ? Boolean(journalExport) : true,
        disabled: resuming,
    });
    const passphrase = passphraseFields('Passphrase for the bundle of the new key',
        'The new key comes back as a bundle for this passphrase, proven by the restore drill before any job '
        + 'switches; the page offers it as a download.');
    const exportBlock = h('div', {class: 'rotate-export'}, passphrase.fields);
    const steps = h('ol', {class: 'rotate-steps', 'aria-label': 'Steps'});
    const message = messageArea('rotate-error');
    const result = h('div', {class: 'rotate-result', role: 'status'});
    const cancel = h('button', {type: 'button', class: 'secondary'}, 'Cancel');
    const submit = h('button', {type: 'submit', class: 'primary'}, resuming ? 'Resume rotation' : 'Rotate');
    const form = h('form', {class: 'rotate-form', novalidate: true},
        h('p', {}, resuming
            ? `This rotation stopped after "${(STEPS.find(([n]) => n === journal.step) || [0, journal.step])[1]}". `
                + 'Resuming runs the remaining steps with the same plan.'
            : `The jobs below encrypt with '${oldKey}'. They get a new key; '${oldKey}' stays associated with them, `
                + 'to decrypt the backups made with it.'),
        h('fieldset', {class: 'source'},
            h('legend', {}, 'Jobs'),
            jobBoxes.map((box) => h('label', {class: 'check', for: box.id}, box, box.value))),
        h('dl', {class: 'export-summary'},
            h('dt', {}, 'Old key'), h('dd', {}, oldKey),
            resuming ? [h('dt', {}, 'New key'), h('dd', {}, journal['new-key'])] : null),
        resuming ? null : h('div', {class: 'field'},
            h('label', {for: newIdField}, 'New key ID'), newId,
            h('p', {class: 'hint'}, `Leave empty for ${defaultNewId(firstJob)}.`)),
        h('label', {class: 'check', for: archiveId}, archiveOld, 'Archive the old key at the end'),
        h('label', {class: 'check', for: exportId}, exportBox, 'Export the new key into a bundle'),
        exportBlock,
        h('h3', {class: 'steps-title'}, 'Steps'),
        steps,
        message.el,
        result,
        h('div', {class: 'dialog-actions'}, cancel, submit));
    const title = resuming ? `Resume the rotation of ${listing(journal.jobs)}` : `Rotate the key of sync job ${job.id}`;
    const {dialog, close} = openDialog({title, body: [form], className: 'rotate'});

    /**
     * Draws the steps of the plan: those up to `done` done, `current`
     * running (or stopped, if `failed`), the rest to do.
     */
    const drawSteps = (done, current, failed = false) => {
        const shown = planSteps(exportBox.checked, archiveOld.checked);
        steps.replaceChildren(...shown.map(([name, label]) => {
            const index = stepIndex(name);
            let stepState = 'pending';
            if (index <= done) {
                stepState = 'done';
            } else if (index === current) {
                stepState = failed ? 'failed' : 'running';
            }
            return h('li', {'data-step': name, 'data-state': stepState},
                h('span', {class: ['badge', `step-${stepState}`]}, {
                    done: 'done', running: 'running…', pending: 'to do', failed: 'stopped',
                }[stepState]), ' ', label);
        }), h('li', {'data-step': 'finished', 'data-state': done >= STEPS.length ? 'done' : 'pending'},
            h('span', {class: ['badge', done >= STEPS.length ? 'step-done' : 'step-pending']},
                done >= STEPS.length ? 'done' : 'to do'), ' ', 'Journal removed: rotation finished'));
    };
    const nextAfter = (done) => planSteps(exportBox.checked, archiveOld.checked)
        .map(([name]) => stepIndex(name)).find((index) => index > done);
    let done = resuming ? stepIndex(journal.step) : -1;
    const redraw = () => {
        exportBlock.hidden = !exportBox.checked;
        drawSteps(done, null);
    };
    archiveOld.addEventListener('change', redraw);
    exportBox.addEventListener('change', redraw);
    redraw();
    cancel.addEventListener('click', close);
    (resuming ? submit : newId).focus();

    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        message.clear();
        result.replaceChildren();
        const jobs = jobBoxes.filter((box) => box.checked).map((box) => box.value);
        const params = {job: jobs, 'archive-old': archiveOld.checked ? 1 : 0};
        if (!resuming && newId.value.trim()) {
            params['new-id'] = newId.value.trim();
        }
        if (resuming) {
            params['new-id'] = journal['new-key'];
        }
        if (exportBox.checked) {
            try {
                params.passphrase = passphrase.check();
            } catch (err) {
                message.error(err.message);
                return;
            }
        }
        // the journal's step while the rotation runs
        let polling = true;
        const poll = async () => {
            while (polling) {
                try {
                    const journals = (await request('GET', ROTATE, {job: jobs[0]})).data || [];
                    if (polling && journals[0]) {
                        done = stepIndex(journals[0].step);
                        drawSteps(done, nextAfter(done));
                    }
                } catch (_) {
                    // the answer of the rotation itself tells what happened
                }
                await new Promise((resolve) => setTimeout(resolve, 250));
            }
        };
        drawSteps(done, nextAfter(done));
        const polled = poll();
        try {
            const answer = await whileBusy(submit, resuming ? 'Resuming…' : 'Rotating…',
                async () => (await request('POST', ROTATE, params)).data, dialog);
            polling = false;
            await polled;
            passphrase.clear();
            if (answer.outcome === 'already-done') {
                done = STEPS.length;
                drawSteps(done, null);
                result.replaceChildren(h('p', {class: 'message note'},
                    `Nothing to do: ${listing(answer.jobs)} encrypt with ${answer['new-key']} already.`));
            } else {
                const ended = answer.journal || {};
                done = STEPS.length;
                drawSteps(done, null);
                const notes = [`Rotated: ${listing(ended.jobs || jobs)} now encrypt with ${ended['new-key']}`
                    + (ended['new-fingerprint'] ? ` (${ended['new-fingerprint']})` : '') + '.'];
                if (ended['old-key-kept']) {
                    notes.push(`The old key stays active: ${ended['old-key-kept']}.`);
                }
                if (answer.bundle) {
                    const name = `${ended['new-key']}.pbsx`;
                    offerDownload(name, answer.bundle, 'application/octet-stream');
                    answer.bundle = null;
                    notes.push(`Downloading the proven export ${name} - keep it away from this server.`);
                }
                result.replaceChildren(...notes.map((note) => h('p', {class: 'message note'}, note)));
            }
            submit.hidden = true;
            cancel.textContent = 'Close';
            cancel.focus();
            await load();
        } catch (err) {
            polling = false;
            await polled;
            const journals = await request('GET', ROTATE, {job: jobs[0]}).then((a) => a.data || []).catch(() => []);
            if (journals[0]) {
                done = stepIndex(journals[0].step);
            }
            drawSteps(done, nextAfter(done), true);
            message.error(journals[0]
                ? `The rotation stopped: ${err.message} - its journal keeps the steps done: resume it, or abort it.`
                : err.message);
            await load();
        }
    });
}
