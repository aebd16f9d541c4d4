// "Important: Save your Encryption Key": shown once after a key was
// generated, the one place the page ever holds key bytes. It offers copy,
// download as `<id>.enc` and print as a paper key; it cannot be dismissed
// by Escape or a click outside, asks again before closing when the key was
// not saved any way yet, and removes the key text from the page when it
// closes.

import {openDialog} from './dialog.js';
import {h, messageArea, offerDownload, uid, whileBusy} from './dom.js';
import {printPaperkey} from './paperkey.js';

/** Copies `text`: the clipboard API, or the selection of `field`. */
async function copy(text, field) {
    try {
        await navigator.clipboard.writeText(text);
        return true;
    } catch (_) {
        field.select();
        return document.execCommand('copy');
    }
}

/**
 * Shows the save dialog for key `id`, whose key file (KeyConfig) the
 * server returned as `keyConfig`. Resolves when the dialog is closed.
 */
export function showSaveKeyDialog(id, keyConfig) {
    return new Promise((resolve) => {
        let keyText = `${JSON.stringify(keyConfig, null, 2)}\n`;
        let saved = false;
        let warned = false;
        const filename = `${id}.enc`;
        const fieldId = uid('key-text');
        const field = h('textarea', {
            id: fieldId, class: 'key-text', readonly: true, rows: 10, spellcheck: 'false',
            autocomplete: 'off', 'aria-describedby': `${fieldId}-hint`,
        });
        field.value = keyText;
        const message = messageArea();
        const sheetHolder = h('div', {class: 'paperkey-holder', hidden: true});
        const copyButton = h('button', {type: 'button', class: 'copy-key'}, 'Copy key');
        const downloadButton = h('button', {type: 'button', class: 'download-key'}, `Download ${filename}`);
        const printButton = h('button', {type: 'button', class: 'print-key'}, 'Print paper key');
        const closeButton = h('button', {type: 'button', class: ['secondary', 'close-save']}, 'Close');
        const warnBeforeUnload = (event) => {
            event.preventDefault();
            event.returnValue = '';
        };
        const {close} = openDialog({
            title: 'Important: Save your Encryption Key',
            className: 'save-key',
            dismissable: false,
            body: [
                h('p', {},
                    'Keep the encryption key ', h('strong', {}, id),
                    ' safe, but where you can reach it for disaster recovery. Without a copy, '
                    + 'backups encrypted with it cannot be restored when this server is lost. '
                    + 'This is the only time the page shows the key.'),
                h('ul', {class: 'save-steps'},
                    h('li', {}, 'Copy it into your password manager,'),
                    h('li', {}, `download it as ${filename} and store the file away from this server,`),
                    h('li', {}, 'print it as a paper key and keep it in a safe place.')),
                h('label', {for: fieldId}, `Key file ${filename}`),
                field,
                h('p', {id: `${fieldId}-hint`, class: 'hint'},
                    'The key is unprotected: whoever holds this text can decrypt the backups.'),
                h('div', {class: 'save-actions'}, copyButton, downloadButton, printButton),
                message.el,
                sheetHolder,
            ],
            actions: [closeButton],
            onClose: () => {
                window.removeEventListener('beforeunload', warnBeforeUnload);
                field.value = '';
                sheetHolder.replaceChildren();
                keyText = null;
                resolve();
            },
        });
        window.addEventListener('beforeunload', warnBeforeUnload);

        copyButton.addEventListener('click', async () => {
            if (await copy(keyText, field)) {
                saved = true;
                message.note('Copied the key to the clipboard.');
            } else {
                message.error('Copying failed - select the key text and copy it by hand.');
            }
        });
        downloadButton.addEventListener('click', () => {
            offerDownload(filename, keyText, 'application/json');
            saved = true;
            message.note(`Downloading ${filename} - check that your browser saved it.`);
        });
        printButton.addEventListener('click', async () => {
            message.clear();
            try {
                await whileBusy(printButton, 'Preparing…', () => printPaperkey(id, sheetHolder));
                saved = true;
                message.note('Printing the paper key (shown below) - check that the printer printed it.');
            } catch (err) {
                message.error(`Printing the paper key failed: ${err.message}`);
            }
        });
        closeButton.addEventListener('click', () => {
            if (!saved && !warned) {
                warned = true;
                closeButton.textContent = 'Close without saving';
                message.error('You have not copied or downloaded the key yet. Close anyway? The key cannot be shown again.');
                return;
            }
            close();
        });
        copyButton.focus();
    });
}
