// Building the page: elements from tags, attributes and text nodes only.
//
// Nothing here turns a string into markup: text goes in as text nodes, so
// an id, a hint or an error message from the server can never become
// script (the Content-Security-Policy also requires Trusted Types, which
// makes every HTML sink throw).

/** Sets one attribute or property of `el` (see `h`). */
function setAttribute(el, name, value) {
    if (value === undefined || value === null || value === false) {
        return;
    }
    if (name.startsWith('on') && typeof value === 'function') {
        el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'class') {
        el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    } else if (name === 'text') {
        el.textContent = String(value);
    } else if (name === 'value' || name === 'checked') {
        el[name] = value;
    } else if (value === true) {
        el.setAttribute(name, '');
    } else {
        el.setAttribute(name, String(value));
    }
}

/** Appends children: nodes, strings (as text), arrays of them; skips null. */
export function append(el, ...children) {
    for (const child of children.flat(Infinity)) {
        if (child === null || child === undefined || child === false) {
            continue;
        }
        el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
}

/**
 * A new element: `h('button', {class: 'x', onClick: fn, disabled: true}, 'Text')`.
 * `on*` functions become event listeners, `text` the text content, `true`
 * an empty attribute; `false`, `null` and `undefined` are left out.
 */
export function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
        setAttribute(el, name, value);
    }
    return append(el, ...children);
}

/** Removes every child of `el`. */
export function clear(el) {
    el.replaceChildren();
    return el;
}

/** A unique id for labels and descriptions. */
let nextId = 0;
export function uid(prefix) {
    nextId += 1;
    return `${prefix}-${nextId}`;
}

/**
 * A place for the outcome of an action, next to it: an error (role
 * "alert", read out at once) or a note. `show(null)` empties it.
 */
export function messageArea(extraClass) {
    const el = h('p', {class: ['message', extraClass], role: 'alert', hidden: true});
    return {
        el,
        error(text) {
            el.className = ['message', 'error', extraClass].filter(Boolean).join(' ');
            el.textContent = text;
            el.hidden = false;
        },
        note(text) {
            el.className = ['message', 'note', extraClass].filter(Boolean).join(' ');
            el.textContent = text;
            el.hidden = false;
        },
        clear() {
            el.textContent = '';
            el.hidden = true;
        },
    };
}

/**
 * Notes where the keyboard focus is, and returns the function that puts
 * it back there. A control disabled while it has the focus (a busy
 * button) loses it: the browser moves it to the page, and a keyboard user
 * would start over from the top. Put back only if the page still has it
 * (nothing else took it meanwhile: a field the caller focused, a dialog)
 * and the element can take it again: still in the document, enabled and
 * shown. An element that is gone (a row or view drawn anew) or hidden
 * leaves the focus to its caller: that view knows what replaced it.
 */
function holdFocus() {
    const held = document.activeElement;
    return () => {
        const now = document.activeElement;
        const lost = !now || now === document.body || now === held;
        if (lost && held && held !== document.body && held.isConnected) {
            // does nothing if it is disabled or hidden
            held.focus();
        }
    };
}

/**
 * Runs `work` (a function returning a promise) while `button` shows that
 * it is busy: disabled, its label replaced by `busyText` and a progress
 * indicator, `aria-busy` on `region`. Restores the button afterwards,
 * whatever `work` did, and the focus if the button's disabling took it
 * (`holdFocus`); returns the result of `work` (or throws its error).
 */
export async function whileBusy(button, busyText, work, region) {
    const label = Array.from(button.childNodes);
    const wasDisabled = button.disabled;
    const returnFocus = holdFocus();
    button.disabled = true;
    button.classList.add('busy');
    button.replaceChildren(h('span', {class: 'spinner', 'aria-hidden': 'true'}), busyText);
    const target = region || button;
    target.setAttribute('aria-busy', 'true');
    try {
        return await work();
    } finally {
        target.removeAttribute('aria-busy');
        button.classList.remove('busy');
        button.replaceChildren(...label);
        button.disabled = wasDisabled;
        returnFocus();
    }
}

/**
 * Loads a page's list: `progress` shown, `table` marked busy and `button`
 * (the page's refresh or apply button) disabled while `work` runs. A
 * failure shows in `message` (a messageArea) as "Loading <what> failed:
 * <reason>"; the page is usable again afterwards, whatever happened, and
 * the focus back where it was if the button's disabling took it
 * (`holdFocus`).
 */
export async function loadingList({table, progress, button, message}, what, work) {
    const returnFocus = holdFocus();
    message.clear();
    progress.hidden = false;
    table.setAttribute('aria-busy', 'true');
    button.disabled = true;
    try {
        await work();
    } catch (err) {
        message.error(`Loading ${what} failed: ${err.message}`);
    } finally {
        progress.hidden = true;
        table.removeAttribute('aria-busy');
        button.disabled = false;
        returnFocus();
    }
}

/**
 * Disables `control` when `reason` (a missing privilege, in words) is
 * given, and says why in its tooltip and its accessible description.
 */
export function allowIf(control, reason) {
    if (reason) {
        control.disabled = true;
        control.title = reason;
        control.dataset.deniedReason = reason;
    } else {
        control.removeAttribute('title');
        delete control.dataset.deniedReason;
    }
    return control;
}

/**
 * Offers `text` as a download named `filename`: a blob URL on a link that
 * is clicked and removed at once, so the text never becomes part of the
 * document (key files and export bundles leave the page only this way).
 */
export function offerDownload(filename, text, type) {
    const url = URL.createObjectURL(new Blob([text], {type}));
    const link = h('a', {href: url, download: filename, hidden: true});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
}
