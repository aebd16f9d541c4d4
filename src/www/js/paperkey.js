// Printing a key as a paper key, from the server's paperkey route (`POST
// /config/encryption-keys/{id}/paperkey`, `output-format` html): the
// key's facts, upstream's BEGIN/END block, the QR code as SVG and the
// typing aid. The page takes no HTML from a string (Trusted Types), so
// the parts are read out of the server's page as text, the QR code as the
// path data of its SVG (checked to be nothing but path commands), and the
// sheet is built with `createElement` inside the save dialog: it holds the
// key, like the dialog's text field, and goes with the dialog. Printing
// shows that sheet alone (`@media print` in app.css).

import {request} from './api.js';
import {h} from './dom.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

const ENTITIES = {'&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&#x27;': "'"};

function unescapeHtml(text) {
    return text.replace(/&(?:amp|lt|gt|quot|#39|#x27);/g, (entity) => ENTITIES[entity]);
}

/** The text of an HTML fragment of the paperkey page (tags dropped). */
function textOf(fragment) {
    return unescapeHtml(fragment.replace(/<[^>]*>/g, ''));
}

function attribute(tag, name) {
    const match = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
    return match ? match[1] : null;
}

/**
 * The parts of the server's paperkey page: `facts` ([label, value]),
 * `checkpoint`, `block`, `qr` ({width, height, paths: [{d, fill}]}),
 * `typingAidIntro`, `typingAid`. Throws if a part is missing or the QR
 * code holds anything but path commands.
 */
export function parsePaperkey(html) {
    const facts = Array.from(html.matchAll(/<tr><th>([\s\S]*?)<\/th><td>([\s\S]*?)<\/td><\/tr>/g),
        (match) => [textOf(match[1]), textOf(match[2])]);
    const pres = Array.from(html.matchAll(/<pre>([\s\S]*?)<\/pre>/g), (match) => unescapeHtml(match[1]));
    const block = pres.find((text) => text.includes('-----BEGIN PROXMOX BACKUP KEY-----'));
    const checkpoint = html.includes('<h2>Audit checkpoint</h2>') ? pres[0] : null;
    const aid = html.match(/<h2>Typing aid<\/h2>\s*<p>([\s\S]*?)<\/p>\s*<pre>([\s\S]*?)<\/pre>/);
    const svg = html.match(/<svg\b[^>]*>[\s\S]*?<\/svg>/);
    if (!block || !aid || !svg) {
        throw new Error('the paperkey page of the server lacks a part (block, QR code or typing aid)');
    }
    const svgTag = svg[0].match(/<svg\b[^>]*>/)[0];
    const width = Number(attribute(svgTag, 'width'));
    const height = Number(attribute(svgTag, 'height'));
    const paths = Array.from(svg[0].matchAll(/<path\b[^>]*>/g), (match) => ({
        d: attribute(match[0], 'd') || '',
        fill: attribute(match[0], 'fill') || '#000',
    }));
    const valid = paths.length > 0 && Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0
        && paths.every((path) => /^[MmHhVvZz0-9 .,-]+$/.test(path.d) && /^#[0-9A-Fa-f]{3,8}$/.test(path.fill));
    if (!valid) {
        throw new Error('the QR code of the server\'s paperkey page is not the SVG this page expects');
    }
    return {
        facts,
        checkpoint,
        block,
        qr: {width, height, paths},
        typingAidIntro: textOf(aid[1]),
        typingAid: unescapeHtml(aid[2]),
    };
}

function qrCode(qr, id) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${qr.width} ${qr.height}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `QR code of the key file of ${id}`);
    svg.setAttribute('shape-rendering', 'crispEdges');
    svg.setAttribute('class', 'paperkey-qr');
    for (const {d, fill} of qr.paths) {
        const path = document.createElementNS(SVG_NS, 'path');
        path.setAttribute('d', d);
        path.setAttribute('fill', fill);
        svg.append(path);
    }
    return svg;
}

/** The printable sheet of key `id` from the parts of `parsePaperkey`. */
function sheet(id, parts) {
    return h('section', {class: 'paperkey-sheet', 'aria-label': `Paper key of ${id}`},
        h('h3', {}, 'Proxmox Backup encryption key - paperkey'),
        h('dl', {class: 'paperkey-facts'}, parts.facts.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value)])),
        parts.checkpoint ? h('div', {class: 'keep'}, h('h4', {}, 'Audit checkpoint'), h('pre', {}, parts.checkpoint)) : null,
        h('pre', {class: ['keep', 'paperkey-block']}, parts.block),
        h('div', {class: ['keep', 'paperkey-qr-wrap']}, qrCode(parts.qr, id)),
        h('div', {class: 'keep'},
            h('h4', {}, 'Typing aid'),
            h('p', {}, parts.typingAidIntro),
            h('pre', {class: 'paperkey-typing-aid'}, parts.typingAid)));
}

/**
 * Prints key `id` as a paper key: asks the server for it, puts the sheet
 * into `holder` (an element of the save dialog) and opens the browser's
 * print dialog. Errors are thrown in the server's words.
 */
export async function printPaperkey(id, holder) {
    const answer = await request('POST', `/config/encryption-keys/${encodeURIComponent(id)}/paperkey`,
        {'output-format': 'html'});
    holder.replaceChildren(sheet(id, parsePaperkey(String(answer.data))));
    holder.hidden = false;
    window.print();
}
