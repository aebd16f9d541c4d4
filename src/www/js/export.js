// Export keys into a bundle (`POST /config/encryption-key-export`): the
// selected keys or all of them, encrypted for a passphrase typed twice,
// offered as a download. The bundle's text leaves the page only as that
// download: it is never put into the document, and the page forgets it
// once the download was offered. What the bundle's clear header lists
// (origin, keys, recipients) is shown afterwards.
//
// Export hands out keys: the server wants Sys.Modify on every key in the
// bundle, so keys without it cannot be selected and "all" is disabled
// while one of them is in the list.

import {request} from './api.js';
import {openDialog} from './dialog.js';
import {allowIf, h, messageArea, offerDownload, uid, whileBusy} from './dom.js';
import {dateTime, listing} from './format.js';
import {SYS_MODIFY, keyPath, missing} from './permissions.js';

const EXPORT = '/config/encryption-key-export';

/** The shortest passphrase the server takes (`MIN_PASSPHRASE_LEN`). */
export const MIN_PASSPHRASE = 5;

/** `encryption-keys-HOST-YYYYMMDD-HHMM.pbsx`, from the bundle's header. */
function bundleName(exported) {
    const host = String(exported.origin || '').split('/').pop().replace(/[^A-Za-z0-9._-]/g, '') || 'pbs';
    const date = new Date(Number(exported.created) * 1000);
    const pad = (n) => String(n).padStart(2, '0');
    const stamp = Number.isNaN(date.getTime())
        ? 'export'
        : `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-`
            + `${pad(date.getHours())}${pad(date.getMinutes())}`;
    return `encryption-keys-${host}-${stamp}.pbsx`;
}

/**
 * Two password fields (passphrase and its repetition) in `form` order;
 * `check()` returns the passphrase or throws the problem in words.
 */
export function passphraseFields(label, hint) {
    const first = uid('passphrase');
    const second = uid('passphrase-repeat');
    const one = h('input', {
        id: first, name: 'passphrase', type: 'password', autocomplete: 'new-password',
        'aria-describedby': `${first}-hint`,
    });
    const two = h('input', {id: second, name: 'passphrase-repeat', type: 'password', autocomplete: 'new-password'});
    return {
        fields: [
            h('div', {class: 'field'}, h('label', {for: first}, label), one,
                h('p', {id: `${first}-hint`, class: 'hint'}, hint)),
            h('div', {class: 'field'}, h('label', {for: second}, 'Repeat the passphrase'), two),
        ],
        check() {
            if (one.value.length < MIN_PASSPHRASE) {
                one.focus();
                throw new Error(`The passphrase needs at least ${MIN_PASSPHRASE} characters.`);
            }
            if (one.value !== two.value) {
                two.focus();
                throw new Error('The two passphrases differ - type the same passphrase twice.');
            }
            return one.value;
        },
        clear() {
            one.value = '';
            two.value = '';
        },
    };
}

/**
 * The export dialog: `selected` (keys of the list the user ticked) or all
 * of `listed` (the list as shown); `done()` after an export.
 */
export function openExportDialog(selected, listed, done) {
    const chooseSelected = h('input', {
        type: 'radio', name: 'what', value: 'selected', id: uid('export-selected'),
        checked: selected.length > 0, disabled: selected.length === 0,
    });
    const denied = listed.map((key) => missing(keyPath(key.id), SYS_MODIFY)).find(Boolean) || null;
    const chooseAll = allowIf(h('input', {
        type: 'radio', name: 'what', value: 'all', id: uid('export-all'), checked: selected.length === 0,
    }), denied);
    if (denied) {
        chooseAll.checked = false;
    }
    const archivedId = uid('export-archived');
    const withArchived = allowIf(h('input', {
        type: 'checkbox', name: 'include-archived', id: archivedId, checked: true,
    }), denied);
    const passphrase = passphraseFields('Passphrase for the bundle',
        'Whoever restores the bundle needs it: keep it apart from the bundle file, and not on this server.');
    const message = messageArea('export-error');
    const result = h('div', {class: 'export-result', role: 'status'});
    const cancel = h('button', {type: 'button', class: 'secondary'}, 'Cancel');
    const submit = h('button', {type: 'submit', class: 'primary'}, 'Export and download');
    const form = h('form', {class: 'export-form', novalidate: true},
        h('p', {}, 'The bundle holds the keys encrypted with a passphrase; its header lists their ids, '
            + 'fingerprints and hints in clear. Keep it away from this server, and run the restore drill on it.'),
        h('fieldset', {class: 'source'},
            h('legend', {}, 'Keys'),
            h('label', {class: 'check', for: chooseSelected.id}, chooseSelected,
                selected.length
                    ? `The selected key${selected.length === 1 ? '' : 's'}: ${listing(selected.map((key) => key.id))}`
                    : 'Selected keys (none selected: tick keys in the list)'),
            h('label', {class: 'check', for: chooseAll.id, title: denied || null}, chooseAll, 'All active keys'),
            h('label', {class: 'check nested', for: archivedId}, withArchived, 'and the archived keys')),
        passphrase.fields,
        message.el,
        result,
        h('div', {class: 'dialog-actions'}, cancel, submit));
    const {dialog, close} = openDialog({title: 'Export encryption keys', body: [form], className: 'export-keys'});
    cancel.addEventListener('click', close);
    const whatChanged = () => {
        withArchived.disabled = Boolean(denied) || !chooseAll.checked;
    };
    chooseSelected.addEventListener('change', whatChanged);
    chooseAll.addEventListener('change', whatChanged);
    whatChanged();
    (chooseSelected.checked ? chooseSelected : chooseAll).focus();

    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        message.clear();
        result.replaceChildren();
        if (!chooseSelected.checked && !chooseAll.checked) {
            message.error(denied
                ? `Tick the keys to export in the list: not all keys can be exported (${denied}).`
                : 'Choose the keys to export.');
            return;
        }
        let secret;
        try {
            secret = passphrase.check();
        } catch (err) {
            message.error(err.message);
            return;
        }
        const params = chooseAll.checked
            ? {'all': 1, 'include-archived': withArchived.checked ? 1 : 0, passphrase: secret}
            : {id: selected.map((key) => key.id), passphrase: secret};
        try {
            const exported = await whileBusy(submit, 'Exporting…',
                async () => (await request('POST', EXPORT, params)).data, dialog);
            const name = bundleName(exported);
            offerDownload(name, exported.bundle, 'application/octet-stream');
            exported.bundle = null;
            passphrase.clear();
            const keys = exported.keys || [];
            result.replaceChildren(
                h('p', {class: 'message note'},
                    `Exported ${keys.length} key${keys.length === 1 ? '' : 's'} - downloading ${name}; `
                    + 'check that your browser saved it.'),
                h('dl', {class: 'export-summary'},
                    h('dt', {}, 'Keys'), h('dd', {}, listing(keys.map((key) => key.id)) || '—'),
                    h('dt', {}, 'Origin'), h('dd', {}, exported.origin || '—'),
                    h('dt', {}, 'Created'), h('dd', {}, dateTime(exported.created)),
                    h('dt', {}, 'Opens with'), h('dd', {}, listing(exported.recipients || []))));
            submit.hidden = true;
            cancel.textContent = 'Close';
            cancel.focus();
            await done();
        } catch (err) {
            message.error(err.message);
        }
    });
}
