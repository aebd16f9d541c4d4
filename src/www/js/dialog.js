// Modal dialogs: the browser's `<dialog>` (focus kept inside, the page
// behind inert), labelled by its title, focus given back to the control
// that opened it. A dialog that must not be dismissed by accident (the
// save-your-key dialog) ignores Escape and clicks outside and reopens if
// the browser closes it anyway; it closes through its own button only.

import {h, messageArea, uid, whileBusy} from './dom.js';

/**
 * Opens a modal dialog. `options`: `title`, `body` (nodes), `actions`
 * (buttons, in order), `dismissable` (Escape closes it; default true),
 * `className`, `onClose`. Returns `{dialog, close}`.
 */
export function openDialog(options) {
    const {title, body = [], actions = [], dismissable = true, className, onClose} = options;
    const titleId = uid('dialog-title');
    const opener = document.activeElement;
    const dialog = h('dialog', {class: ['dialog', className], 'aria-labelledby': titleId},
        h('h2', {id: titleId, class: 'dialog-title'}, title),
        h('div', {class: 'dialog-body'}, body),
        actions.length ? h('div', {class: 'dialog-actions'}, actions) : null);
    let closing = false;

    const close = () => {
        if (closing) {
            return;
        }
        closing = true;
        document.removeEventListener('keydown', blockEscape, true);
        if (dialog.open) {
            dialog.close();
        }
        dialog.remove();
        if (onClose) {
            onClose();
        }
        if (opener && opener.isConnected && typeof opener.focus === 'function') {
            opener.focus();
        } else {
            // the control that opened it is gone (its row was removed)
            const main = document.getElementById('main');
            if (main) {
                main.focus();
            }
        }
    };

    // Escape: a close request the page may refuse; Chromium closes a
    // dialog on a second Escape unless the key press itself is refused
    function blockEscape(event) {
        if (event.key === 'Escape' && dialog.open) {
            event.preventDefault();
            event.stopPropagation();
        }
    }

    if (dismissable) {
        dialog.addEventListener('cancel', (event) => {
            event.preventDefault();
            close();
        });
    } else {
        dialog.setAttribute('closedby', 'none');
        document.addEventListener('keydown', blockEscape, true);
        dialog.addEventListener('cancel', (event) => event.preventDefault());
        dialog.addEventListener('close', () => {
            if (!closing && dialog.isConnected) {
                dialog.showModal();
            }
        });
    }
    document.body.append(dialog);
    dialog.showModal();
    return {dialog, close};
}

/**
 * A confirmation that asks to type `expected` (a key id) before
 * `actionLabel` runs `action` (a function returning a promise). The
 * dialog shows progress while it runs and the server's error if it fails;
 * closes on success. `text` explains what will happen.
 */
export function confirmByTyping({title, text, expected, actionLabel, busyLabel, action, acknowledge}) {
    const inputId = uid('confirm');
    const input = h('input', {
        id: inputId, type: 'text', autocomplete: 'off', spellcheck: 'false',
        autocapitalize: 'off', class: 'confirm-input',
    });
    // `acknowledge`: a statement the user must also tick (a loss the typed
    // id alone does not own up to)
    const ackId = uid('acknowledge');
    const ack = acknowledge ? h('input', {id: ackId, type: 'checkbox', class: 'confirm-acknowledge'}) : null;
    const message = messageArea();
    const cancel = h('button', {type: 'button', class: 'secondary'}, 'Cancel');
    const confirm = h('button', {type: 'submit', class: 'danger', disabled: true}, actionLabel);
    const form = h('form', {class: 'confirm-form', novalidate: true},
        h('p', {}, text),
        ack ? h('label', {class: ['check', 'acknowledge'], for: ackId}, ack, acknowledge) : null,
        h('label', {for: inputId}, 'Type ', h('code', {}, expected), ' to confirm:'),
        input,
        message.el,
        h('div', {class: 'dialog-actions'}, cancel, confirm));
    const {dialog, close} = openDialog({title, body: [form], className: 'confirm'});
    const confirmed = () => input.value === expected && (!ack || ack.checked);
    const update = () => {
        confirm.disabled = !confirmed();
    };
    input.addEventListener('input', update);
    if (ack) {
        ack.addEventListener('change', update);
    }
    cancel.addEventListener('click', close);
    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        if (!confirmed()) {
            return;
        }
        message.clear();
        try {
            await whileBusy(confirm, busyLabel || actionLabel, action, dialog);
            close();
        } catch (err) {
            message.error(err.message);
            update();
        }
    });
    input.focus();
    return {dialog, close};
}
