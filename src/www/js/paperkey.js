// Printing a key as a paper key (text and QR code, from the server's
// paperkey route as SVG). The route is not served yet: until it is, the
// save dialog's Print button says so, and the key is saved by copy or
// download instead.

/** Whether this server prints paper keys. */
export const PAPERKEY_AVAILABLE = false;

/**
 * Prints key `id` (its key file text is `keyText`) as a paper key;
 * reports through `message` (a message area of the dialog).
 */
export async function printPaperkey(id, keyText, message) {
    message.error(`Printing a paper key of '${id}' needs the server's paperkey route, which this server does not have yet - copy or download the key instead.`);
}
