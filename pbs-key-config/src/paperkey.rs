//! Paperkeys: a key file on paper, and back.
//!
//! A paperkey ([`Paperkey`], as text or HTML) shows the key id, its full
//! fingerprint, the key's protection, an optional audit checkpoint, and the
//! key file three ways:
//!
//! - upstream's block: `-----BEGIN PROXMOX BACKUP KEY-----`, the key file as
//!   pretty-printed JSON, `-----END PROXMOX BACKUP KEY-----`;
//! - a QR code (error correction level M) of that JSON, the lines joined by
//!   `\n` as upstream encodes it: UTF-8 half blocks in text, SVG in HTML;
//! - a typing aid: the key file in a compact binary record
//!   (`docs/export-format.md`), as numbered lines of 16 bytes in hex, each
//!   ending in a checksum of its number and bytes, so a mistyped line is
//!   found and named when the key is typed back in.
//!
//! [`parse_paperkey`] takes paperkey text back: the block if the text has
//! one, else the typing-aid lines, with any other lines around them ignored.
//! It names the first bad line, by its printed number and its line in the
//! input, and never repeats what was typed (it is key material).

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use anyhow::{Error, bail, format_err};
use qrcode::{EcLevel, QrCode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;
use proxmox_schema::{ApiStringFormat, ApiType, EnumEntry, Schema, StringSchema};

use pbs_api_types::Fingerprint;

use crate::{KeyConfig, KeyDerivationConfig, epoch_to_rfc3339, fingerprint};

/// First line of upstream's paperkey block.
pub const BEGIN_MARKER: &str = "-----BEGIN PROXMOX BACKUP KEY-----";
/// Last line of upstream's paperkey block.
pub const END_MARKER: &str = "-----END PROXMOX BACKUP KEY-----";

/// Key bytes per typing-aid line.
pub const TYPING_LINE_BYTES: usize = 16;
/// Most typing-aid lines (a record of at most 16 KiB; real keys need 4 to 12).
const MAX_TYPING_LINES: usize = 999;

/// Version byte of the typing-aid record.
const RECORD_VERSION: u8 = 1;
/// Record flag: the key file has a `fingerprint` field.
const FLAG_FINGERPRINT: u8 = 1;
/// Record flag: the key file has a `hint` field.
const FLAG_HINT: u8 = 2;
/// Record KDF codes.
const KDF_NONE: u8 = 0;
const KDF_SCRYPT: u8 = 1;
const KDF_PBKDF2: u8 = 2;
/// Bytes of the record check (SHA-256 prefix) at its end.
const RECORD_CHECK_LEN: usize = 4;
/// Domain of the per-line checksums.
const LINE_CHECK_DOMAIN: &[u8] = b"pbs-keystore paperkey line";

/// Output format of a paperkey.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaperkeyFormat {
    /// UTF-8 text, the QR code as half blocks.
    #[default]
    Text,
    /// An HTML page, the QR code as SVG.
    Html,
}

impl ApiType for PaperkeyFormat {
    const API_SCHEMA: Schema = StringSchema::new("Paperkey output format.")
        .format(&ApiStringFormat::Enum(&[
            EnumEntry::new("text", "UTF-8 text, the QR code as half blocks."),
            EnumEntry::new("html", "An HTML page, the QR code as SVG."),
        ]))
        .default("text")
        .schema();
}

/// Why paperkey text could not be read back.
///
/// Raised inside an [`anyhow::Error`]. Line numbers are the printed ones
/// (`03:`) and, for the input, 1-based lines of the text given. No variant
/// holds what was typed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaperkeyError {
    /// Neither a BEGIN/END block nor typing-aid lines were found.
    NotFound,
    /// The block has a BEGIN line but no END line after it.
    NoEndMarker,
    /// The text has several BEGIN lines: which block is the key's is not
    /// for the reader to guess.
    SeveralBlocks(usize),
    /// A typing-aid line is wrong: bad characters or a checksum mismatch.
    BadLine {
        /// The printed line number.
        line: usize,
        /// The line of the input it was found on.
        input_line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same line number was typed twice, differently.
    DuplicateLine {
        /// The printed line number.
        line: usize,
        /// The input lines of both.
        input_lines: (usize, usize),
    },
    /// A typing-aid line is missing.
    MissingLine(usize),
    /// A typing-aid line beyond the end of the key.
    ExtraLine {
        /// The printed line number.
        line: usize,
        /// How many lines the key has.
        lines: usize,
    },
    /// Every line is right on its own, but together they are not one key
    /// (lines of two paperkeys?).
    RecordMismatch,
    /// The typing-aid record decodes to no valid key file; holds why.
    BadRecord(&'static str),
}

impl fmt::Display for PaperkeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaperkeyError::NotFound => write!(
                f,
                "no paperkey found - expected a '{BEGIN_MARKER}' block or typing-aid lines ('01: 0123 4567 ... - abcd')"
            ),
            PaperkeyError::NoEndMarker => {
                write!(f, "paperkey block has no '{END_MARKER}' line")
            }
            PaperkeyError::SeveralBlocks(count) => write!(
                f,
                "the text holds {count} '{BEGIN_MARKER}' lines - give the paperkey of one key"
            ),
            PaperkeyError::BadLine {
                line,
                input_line,
                reason,
            } => write!(
                f,
                "typing-aid line {line:02} (input line {input_line}) {reason} - check it against the paper"
            ),
            PaperkeyError::DuplicateLine {
                line,
                input_lines: (first, second),
            } => write!(
                f,
                "typing-aid line {line:02} is given twice, differently (input lines {first} and {second})"
            ),
            PaperkeyError::MissingLine(line) => {
                write!(f, "typing-aid line {line:02} is missing")
            }
            PaperkeyError::ExtraLine { line, lines } => write!(
                f,
                "typing-aid line {line:02} is beyond the end of the key, which has {lines} lines"
            ),
            PaperkeyError::RecordMismatch => write!(
                f,
                "typing-aid lines are each correct but do not make up one key - are they from two paperkeys?"
            ),
            PaperkeyError::BadRecord(detail) => {
                write!(
                    f,
                    "typing-aid lines do not hold a valid key file - {detail}"
                )
            }
        }
    }
}

impl std::error::Error for PaperkeyError {}

/// A key ready to print.
pub struct Paperkey {
    id: String,
    key_config: KeyConfig,
    fingerprint: Option<Fingerprint>,
    checkpoint: Option<String>,
}

impl fmt::Debug for Paperkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paperkey")
            .field("id", &self.id)
            .field("key_config", &self.key_config)
            .field("fingerprint", &self.fingerprint)
            .field("checkpoint", &self.checkpoint)
            .finish()
    }
}

impl Paperkey {
    /// A paperkey of key `id` with key file `key_config`, and the audit
    /// checkpoint text `checkpoint` if the caller has one. An unprotected
    /// key file is printed with its fingerprint (computed from its key)
    /// where it has none, so that what is typed back is checked.
    ///
    /// # Errors
    ///
    /// An unprotected key file whose stored fingerprint is not its key's, or
    /// a key file too large for the typing aid (a hint of kilobytes).
    pub fn new(id: &str, key_config: &KeyConfig, checkpoint: Option<&str>) -> Result<Self, Error> {
        let mut key_config = key_config.clone();
        let fingerprint = if key_config.is_protected() {
            key_config.fingerprint
        } else {
            let (mut key, _created, fingerprint) = key_config
                .decrypt(&|| bail!("an unprotected key needs no passphrase"))
                .layer_err(|| format!("cannot make a paperkey of key '{id}'"))?;
            key.zeroize();
            // printed with its fingerprint, even where its file has none (an
            // old upstream key file): the key read back is checked against
            // it, so a typo in the block's `data` is refused, never read as
            // another valid key (docs/security.md finding 68)
            key_config.fingerprint = Some(fingerprint);
            Some(fingerprint)
        };
        let mut record = encode_record(&key_config)
            .layer_err(|| format!("cannot make a paperkey of key '{id}'"))?;
        record.zeroize();
        Ok(Self {
            id: id.to_string(),
            key_config,
            fingerprint,
            checkpoint: checkpoint.map(str::to_string),
        })
    }

    /// The key file as upstream's paperkey shows it: pretty-printed JSON.
    /// This is also the QR code's content.
    pub fn key_file_pretty(&self) -> Result<String, Error> {
        Ok(serde_json::to_string_pretty(&self.key_config)?)
    }

    /// The BEGIN/END block, lines joined by `\n`, with a final newline.
    pub fn block(&self) -> Result<String, Error> {
        let mut json = self.key_file_pretty()?;
        let block = format!("{BEGIN_MARKER}\n{json}\n{END_MARKER}\n");
        json.zeroize();
        Ok(block)
    }

    /// The typing-aid lines, `NN: hhhh hhhh ... - cccc`.
    pub fn typing_aid(&self) -> Result<Vec<String>, Error> {
        let mut record = encode_record(&self.key_config)?;
        let lines = record
            .chunks(TYPING_LINE_BYTES)
            .enumerate()
            .map(|(index, chunk)| {
                let number = index + 1;
                let mut hex = String::with_capacity(chunk.len() * 5 / 2);
                for (i, pair) in chunk.chunks(2).enumerate() {
                    if i > 0 {
                        hex.push(' ');
                    }
                    for byte in pair {
                        let _ = write!(hex, "{byte:02x}");
                    }
                }
                let check = line_check(number, chunk);
                let line = format!("{number:02}: {hex} - {:02x}{:02x}", check[0], check[1]);
                hex.zeroize();
                line
            })
            .collect();
        record.zeroize();
        Ok(lines)
    }

    /// The QR code of [`Paperkey::key_file_pretty`].
    fn qr_code(&self) -> Result<QrCode, Error> {
        let mut json = self.key_file_pretty()?;
        let code = QrCode::with_error_correction_level(json.as_bytes(), EcLevel::M);
        json.zeroize();
        code.map_err(|err| format_err!("unable to make a QR code of key '{}' - {err}", self.id))
    }

    /// The lines before the key: id, fingerprint, creation, protection.
    fn describe(&self) -> Vec<(&'static str, String)> {
        let fingerprint = match &self.fingerprint {
            Some(fingerprint) => fingerprint.signature(),
            None => "not stored in the key file".to_string(),
        };
        let protection = match (&self.key_config.kdf, &self.key_config.hint) {
            (None, _) => {
                "none - whoever holds this paper can decrypt the backups made with this key"
                    .to_string()
            }
            (Some(kdf), hint) => {
                let kind = match kdf {
                    KeyDerivationConfig::Scrypt { .. } => "scrypt",
                    KeyDerivationConfig::PBKDF2 { .. } => "PBKDF2",
                };
                match hint {
                    Some(hint) => {
                        format!("passphrase ({kind}), hint: {}", crate::printable_hint(hint))
                    }
                    None => format!("passphrase ({kind})"),
                }
            }
        };
        vec![
            ("Key id", self.id.clone()),
            ("Fingerprint", fingerprint),
            (
                "Created",
                epoch_to_rfc3339(self.key_config.created)
                    .unwrap_or_else(|| self.key_config.created.to_string()),
            ),
            ("Protection", protection),
        ]
    }

    /// The paperkey in `format`.
    pub fn render(&self, format: PaperkeyFormat) -> Result<String, Error> {
        match format {
            PaperkeyFormat::Text => self.to_text(),
            PaperkeyFormat::Html => self.to_html(),
        }
    }

    /// The paperkey as UTF-8 text, for a terminal or a plain printer.
    pub fn to_text(&self) -> Result<String, Error> {
        let mut out = String::new();
        out.push_str("Proxmox Backup encryption key - paperkey\n\n");
        for (label, value) in self.describe() {
            let _ = writeln!(out, "{:<13}{value}", format!("{label}:"));
        }
        if let Some(checkpoint) = &self.checkpoint {
            out.push_str("Audit checkpoint:\n");
            for line in checkpoint.lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        out.push('\n');
        out.push_str(&self.block()?);
        out.push('\n');

        let qr = self
            .qr_code()?
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        out.push_str(&qr);
        out.push_str("\n\n");

        out.push_str(TYPING_AID_INTRO);
        out.push('\n');
        for line in self.typing_aid()? {
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    /// The paperkey as an HTML page for printing.
    pub fn to_html(&self) -> Result<String, Error> {
        let svg = self
            .qr_code()?
            .render::<qrcode::render::svg::Color>()
            .module_dimensions(4, 4)
            .quiet_zone(true)
            .build();
        // inline in the page: without the XML declaration
        let svg = match svg.find("<svg") {
            Some(start) => &svg[start..],
            None => bail!("unexpected SVG output of the QR code library"),
        };

        let mut out = String::new();
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        let _ = writeln!(
            out,
            "<title>Proxmox Backup encryption key {} - paperkey</title>",
            html_escape(&self.id)
        );
        out.push_str(concat!(
            "<style>\n",
            "  body { font-family: sans-serif; }\n",
            "  pre { font-size: 11pt; white-space: pre-wrap; overflow-wrap: anywhere; }\n",
            "  th { text-align: left; padding-right: 1em; }\n",
            "  .qr svg { width: 70mm; height: 70mm; }\n",
            "  .keep { page-break-inside: avoid; break-inside: avoid; }\n",
            "</style>\n</head>\n<body>\n",
            "<h1>Proxmox Backup encryption key - paperkey</h1>\n<table>\n",
        ));
        for (label, value) in self.describe() {
            let value = if label == "Fingerprint" || label == "Key id" {
                format!("<code>{}</code>", html_escape(&value))
            } else {
                html_escape(&value)
            };
            let _ = writeln!(out, "<tr><th>{label}</th><td>{value}</td></tr>");
        }
        out.push_str("</table>\n");
        if let Some(checkpoint) = &self.checkpoint {
            let _ = writeln!(
                out,
                "<div class=\"keep\"><h2>Audit checkpoint</h2>\n<pre>{}</pre></div>",
                html_escape(checkpoint.trim_end())
            );
        }
        let _ = writeln!(
            out,
            "<div class=\"keep\"><pre>{}</pre></div>",
            html_escape(self.block()?.trim_end())
        );
        let _ = writeln!(out, "<div class=\"keep qr\">{svg}</div>");
        let _ = writeln!(
            out,
            "<div class=\"keep\"><h2>Typing aid</h2>\n<p>{}</p>\n<pre>{}</pre></div>",
            html_escape(TYPING_AID_INTRO.trim_end()),
            self.typing_aid()?.join("\n")
        );
        out.push_str("</body>\n</html>\n");
        Ok(out)
    }
}

/// The words above the typing-aid lines.
const TYPING_AID_INTRO: &str = "\
Typing aid: to restore the key by hand, type these lines (with their
numbers). Each ends in a checksum, so a mistyped line is found and named.
";

/// Escapes text for HTML element content (never used in attributes), so
/// the JSON block in the page source stays JSON.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The checksum of typing-aid line `number` holding `bytes`: the first two
/// bytes of SHA-256(domain || number as u16 big endian || bytes).
fn line_check(number: usize, bytes: &[u8]) -> [u8; 2] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(LINE_CHECK_DOMAIN);
    hasher.update(&(number as u16).to_be_bytes());
    hasher.update(bytes);
    let digest = hasher.finish();
    [digest[0], digest[1]]
}

/// Appends `bytes` with a u16 big-endian length.
fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Error> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| format_err!("key file field of {} bytes is too long", bytes.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// The typing-aid record of a key file (layout: `docs/export-format.md`).
fn encode_record(key_config: &KeyConfig) -> Result<Vec<u8>, Error> {
    let mut out = vec![RECORD_VERSION, 0, 0];
    let mut flags = 0;
    if key_config.fingerprint.is_some() {
        flags |= FLAG_FINGERPRINT;
    }
    if key_config.hint.is_some() {
        flags |= FLAG_HINT;
    }
    out.push(flags);
    match &key_config.kdf {
        None => out.push(KDF_NONE),
        Some(KeyDerivationConfig::Scrypt { n, r, p, salt }) => {
            out.push(KDF_SCRYPT);
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&r.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
            push_bytes(&mut out, salt)?;
        }
        Some(KeyDerivationConfig::PBKDF2 { iter, salt }) => {
            out.push(KDF_PBKDF2);
            out.extend_from_slice(&(*iter as u64).to_be_bytes());
            push_bytes(&mut out, salt)?;
        }
    }
    out.extend_from_slice(&key_config.created.to_be_bytes());
    out.extend_from_slice(&key_config.modified.to_be_bytes());
    push_bytes(&mut out, &key_config.data)?;
    if let Some(hint) = &key_config.hint {
        push_bytes(&mut out, hint.as_bytes())?;
    }
    // an unprotected key's fingerprint is computed from the key instead
    if let (Some(fingerprint), true) = (&key_config.fingerprint, key_config.is_protected()) {
        out.extend_from_slice(fingerprint.bytes());
    }
    let len = out.len() + RECORD_CHECK_LEN;
    if len > MAX_TYPING_LINES * TYPING_LINE_BYTES {
        out.zeroize();
        bail!("key file is too large for a paperkey typing aid ({len} bytes)");
    }
    out[1..3].copy_from_slice(&(len as u16).to_be_bytes());
    let check = openssl::sha::sha256(&out);
    out.extend_from_slice(&check[..RECORD_CHECK_LEN]);
    Ok(out)
}

/// Reads a typing-aid record, from after its version and length.
struct RecordReader<'a> {
    data: &'a [u8],
}

impl<'a> RecordReader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], PaperkeyError> {
        if self.data.len() < len {
            return Err(PaperkeyError::BadRecord("it ends early"));
        }
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, PaperkeyError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, PaperkeyError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn i64(&mut self) -> Result<i64, PaperkeyError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn bytes(&mut self) -> Result<&'a [u8], PaperkeyError> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().unwrap());
        self.take(usize::from(len))
    }
}

/// The key file of a whole record (checked by its record check already).
fn decode_record(record: &[u8]) -> Result<KeyConfig, PaperkeyError> {
    let body = &record[3..record.len() - RECORD_CHECK_LEN];
    let mut reader = RecordReader { data: body };
    let flags = reader.u8()?;
    if flags & !(FLAG_FINGERPRINT | FLAG_HINT) != 0 {
        return Err(PaperkeyError::BadRecord("unknown flags"));
    }
    let kdf = match reader.u8()? {
        KDF_NONE => None,
        KDF_SCRYPT => Some(KeyDerivationConfig::Scrypt {
            n: reader.u64()?,
            r: reader.u64()?,
            p: reader.u64()?,
            salt: reader.bytes()?.to_vec(),
        }),
        KDF_PBKDF2 => Some(KeyDerivationConfig::PBKDF2 {
            iter: usize::try_from(reader.u64()?)
                .map_err(|_| PaperkeyError::BadRecord("PBKDF2 iteration count too large"))?,
            salt: reader.bytes()?.to_vec(),
        }),
        _ => return Err(PaperkeyError::BadRecord("unknown key derivation")),
    };
    let created = reader.i64()?;
    let modified = reader.i64()?;
    let data = reader.bytes()?.to_vec();
    let hint = if flags & FLAG_HINT != 0 {
        let hint = std::str::from_utf8(reader.bytes()?)
            .map_err(|_| PaperkeyError::BadRecord("hint is not UTF-8"))?;
        Some(hint.to_string())
    } else {
        None
    };
    let mut key_config = KeyConfig {
        kdf,
        created,
        modified,
        data,
        fingerprint: None,
        hint,
    };
    if flags & FLAG_FINGERPRINT != 0 {
        key_config.fingerprint = Some(if key_config.is_protected() {
            let bytes: [u8; 32] = reader.take(32)?.try_into().unwrap();
            Fingerprint::new(bytes)
        } else {
            let key: &[u8; 32] = key_config
                .data
                .as_slice()
                .try_into()
                .map_err(|_| PaperkeyError::BadRecord("key data is not 32 bytes"))?;
            fingerprint(key)
        });
    }
    if !reader.data.is_empty() {
        return Err(PaperkeyError::BadRecord("unexpected bytes at its end"));
    }
    Ok(key_config)
}

/// Reads a key file back from paperkey text: upstream's BEGIN/END block if
/// the text has one, else the typing-aid lines. Other lines (headings, the
/// QR code, a mail quote's blank lines) are ignored.
///
/// A marker counts only on a line of its own (blanks around it, and HTML
/// tags after it, aside): the page prints the key file's hint, text of
/// whoever made the key file, above the block and inside it, and a hint
/// quoting a block of another key must not be read as the key's
/// (docs/security.md finding 63). A text with several BEGIN lines is
/// refused.
///
/// An unprotected key is checked against its stored fingerprint. For a
/// protected key that check needs the passphrase: decrypt the result.
///
/// # Errors
///
/// A [`PaperkeyError`] naming the first bad typing-aid line, or a
/// [`KeyError`](crate::KeyError) for a block that is no valid key file.
pub fn parse_paperkey(text: &str) -> Result<KeyConfig, Error> {
    let key_config = match key_block(text)? {
        Some(json) => KeyConfig::from_json(json.as_bytes()).layer_err(|| "paperkey block")?,
        None => parse_typing_aid(text)?,
    };
    if !key_config.is_protected() {
        let (mut key, _created, _fingerprint) = key_config
            .decrypt(&|| bail!("an unprotected key needs no passphrase"))
            .layer_err(|| "paperkey")?;
        key.zeroize();
    }
    Ok(key_config)
}

/// The text between the BEGIN line of `text` and the first END line after
/// it; `None` if no line is a BEGIN marker.
fn key_block(text: &str) -> Result<Option<&str>, PaperkeyError> {
    let mut begins = 0;
    let mut start = None;
    let mut block = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        if is_marker_line(line, BEGIN_MARKER) {
            begins += 1;
            start.get_or_insert(offset);
        } else if let (Some(from), None) = (start, block)
            && is_marker_line(line, END_MARKER)
        {
            block = Some(&text[from..line_start]);
        }
    }
    match begins {
        0 => Ok(None),
        1 => block.map(Some).ok_or(PaperkeyError::NoEndMarker),
        count => Err(PaperkeyError::SeveralBlocks(count)),
    }
}

/// Whether `line` is `marker` alone, but for blanks around it and HTML
/// tags after it: the print pages of upstream's web interfaces close their
/// paragraph on the END line (`-----END PROXMOX BACKUP KEY-----</p>`). No
/// hint makes such a line: in the block it is inside a JSON string, and
/// the facts line starts with its label.
fn is_marker_line(line: &str, marker: &str) -> bool {
    let mut rest = line.trim();
    while rest.ends_with('>')
        && let Some(tag) = rest.rfind('<')
    {
        rest = rest[..tag].trim_end();
    }
    rest == marker
}

/// Reads a key file from key file JSON or paperkey text (see
/// [`parse_paperkey`]), as `import` and `restore` accept keys.
pub fn parse_key_file_or_paperkey(text: &str) -> Result<KeyConfig, Error> {
    if text.trim_start().starts_with('{') {
        return KeyConfig::from_json(text.as_bytes());
    }
    parse_paperkey(text)
}

/// One typing-aid line as found in the input.
struct TypedLine<'a> {
    input_line: usize,
    /// The hex groups, as typed.
    data: &'a str,
    /// The checksum, as typed.
    checksum: &'a str,
}

/// The key file of the typing-aid lines in `text`.
fn parse_typing_aid(text: &str) -> Result<KeyConfig, Error> {
    let typed = typed_lines(text)?;

    // each line on its own first, in printed order: the first bad one is named
    let mut record = Vec::with_capacity(typed.len() * TYPING_LINE_BYTES);
    let mut lengths = Vec::with_capacity(typed.len());
    let result = decode_lines(&typed, &mut record, &mut lengths);
    if let Err(err) = result {
        record.zeroize();
        return Err(err.into());
    }
    let result = assemble_record(&record, &lengths);
    record.zeroize();
    Ok(result?)
}

/// The typing-aid lines of `text` (numbered and mostly hex), by their
/// number; refused if a number comes twice with other content, or none
/// does.
fn typed_lines(text: &str) -> Result<BTreeMap<usize, TypedLine<'_>>, Error> {
    static LINE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    // "NN:" or "NN." then the hex groups, a dash, the checksum
    let pattern = LINE.get_or_init(|| {
        regex::Regex::new(r"^\s*(\d{1,3})\s*[:.]\s*(.*?)\s*-\s*(\S*)\s*$").unwrap()
    });
    let mut typed: BTreeMap<usize, TypedLine> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let Some(captures) = pattern.captures(line) else {
            continue;
        };
        // a numbered line of prose ("2. then run it - done") is not a key
        // line; one with a typo in it is (most of it is hex)
        let data = captures.get(2).unwrap().as_str();
        let digits = data.chars().filter(|c| !c.is_whitespace()).count();
        let hex = data.chars().filter(char::is_ascii_hexdigit).count();
        if digits < 2 || hex * 4 < digits * 3 || captures[3].len() > 8 {
            continue;
        }
        let number: usize = captures[1].parse().expect("digits");
        let entry = TypedLine {
            input_line: index + 1,
            data,
            checksum: captures.get(3).unwrap().as_str(),
        };
        if let Some(previous) = typed.get(&number) {
            let same = normalized(previous.data) == normalized(entry.data)
                && previous.checksum.eq_ignore_ascii_case(entry.checksum);
            if !same {
                return Err(PaperkeyError::DuplicateLine {
                    line: number,
                    input_lines: (previous.input_line, entry.input_line),
                }
                .into());
            }
            continue;
        }
        typed.insert(number, entry);
    }
    if typed.is_empty() {
        return Err(PaperkeyError::NotFound.into());
    }

    Ok(typed)
}

/// Decodes each line on its own, in printed order (so the first bad one
/// is named), into `record`, and notes each line's number, input line
/// and length in `lengths`.
fn decode_lines(
    typed: &BTreeMap<usize, TypedLine>,
    record: &mut Vec<u8>,
    lengths: &mut Vec<(usize, usize, usize)>,
) -> Result<(), PaperkeyError> {
    for (&number, line) in typed {
        let bad = |reason| PaperkeyError::BadLine {
            line: number,
            input_line: line.input_line,
            reason,
        };
        let mut bytes = decode_hex(line.data).ok_or_else(|| {
            bad("has a character that is not a hex digit (0-9, a-f), or an odd number of digits")
        })?;
        let check = decode_hex(line.checksum);
        let ok = check.as_deref() == Some(line_check(number, &bytes).as_slice());
        if !ok {
            bytes.zeroize();
            return Err(match check {
                Some(check) if check.len() == 2 => bad("has a typing error (checksum mismatch)"),
                _ => bad("has no checksum of 4 hex digits at its end"),
            });
        }
        if number == 0 || number > MAX_TYPING_LINES {
            bytes.zeroize();
            return Err(PaperkeyError::ExtraLine {
                line: number,
                lines: 0,
            });
        }
        lengths.push((number, line.input_line, bytes.len()));
        record.extend_from_slice(&bytes);
        bytes.zeroize();
    }
    Ok(())
}

/// Checks the numbering and lengths of the lines and decodes the record.
fn assemble_record(
    record: &[u8],
    lengths: &[(usize, usize, usize)],
) -> Result<KeyConfig, PaperkeyError> {
    // lines 1..=k without a gap
    for (expected, (number, _, _)) in (1..).zip(lengths) {
        if *number != expected {
            return Err(PaperkeyError::MissingLine(expected));
        }
    }
    // line 1 holds the version and the record length
    if lengths[0].2 < 3 || record[0] != RECORD_VERSION {
        return Err(PaperkeyError::BadRecord("unknown record version"));
    }
    let total = usize::from(u16::from_be_bytes([record[1], record[2]]));
    let lines = total.div_ceil(TYPING_LINE_BYTES);
    if total < 3 + RECORD_CHECK_LEN {
        return Err(PaperkeyError::BadRecord("record length out of range"));
    }
    if lengths.len() < lines {
        return Err(PaperkeyError::MissingLine(lengths.len() + 1));
    }
    if lengths.len() > lines {
        return Err(PaperkeyError::ExtraLine {
            line: lines + 1,
            lines,
        });
    }
    for (index, (number, input_line, len)) in lengths.iter().enumerate() {
        let expected = if index + 1 < lines {
            TYPING_LINE_BYTES
        } else {
            total - (lines - 1) * TYPING_LINE_BYTES
        };
        if *len != expected {
            return Err(PaperkeyError::BadLine {
                line: *number,
                input_line: *input_line,
                reason: "has the wrong number of digits",
            });
        }
    }
    let (body, check) = record.split_at(total - RECORD_CHECK_LEN);
    if openssl::sha::sha256(body)[..RECORD_CHECK_LEN] != *check {
        return Err(PaperkeyError::RecordMismatch);
    }
    decode_record(record)
}

/// Hex digits without whitespace, lower case.
fn normalized(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Hex digits (spaces between groups allowed, either case) to bytes.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let mut digits = normalized(text).into_bytes();
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let result = if !digits.len().is_multiple_of(2) || digits.is_empty() {
        None
    } else {
        digits
            .chunks(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect()
    };
    digits.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use pbs_api_types::Kdf;

    use super::*;
    use crate::KeyError;

    const KEY: [u8; 32] = [0x5a; 32];

    fn unprotected() -> KeyConfig {
        let mut key_config = KeyConfig::without_password(KEY).unwrap();
        key_config.created = 1_735_689_600;
        key_config.modified = 1_735_776_000;
        key_config
    }

    /// Key files of every shape the record knows.
    fn key_configs() -> Vec<(&'static str, KeyConfig)> {
        let mut no_fingerprint = unprotected();
        no_fingerprint.fingerprint = None;
        let mut pbkdf2 = KeyConfig::with_key(&[7; 32], b"paper pass", Kdf::PBKDF2).unwrap();
        pbkdf2.hint = Some("the <usual> one, with a \"twist\"".into());
        // scrypt parameters as a file holds them, without deriving here
        let mut scrypt = pbkdf2.clone();
        scrypt.kdf = Some(KeyDerivationConfig::Scrypt {
            n: 65536,
            r: 8,
            p: 1,
            salt: vec![9; 32],
        });
        scrypt.hint = None;
        scrypt.fingerprint = None;
        vec![
            ("unprotected", unprotected()),
            ("no-fingerprint", no_fingerprint),
            ("pbkdf2-with-hint", pbkdf2),
            ("scrypt", scrypt),
        ]
    }

    /// Whether the typing-aid line `line` (number `number`) passes its own
    /// line check, as `decode_lines` tests it.
    fn passes_its_check(number: usize, line: &str) -> bool {
        let text = format!("{line}\n");
        let typed = typed_lines(&text).unwrap();
        let line = &typed[&number];
        decode_hex(line.data).is_some_and(|bytes| {
            decode_hex(line.checksum).as_deref() == Some(line_check(number, &bytes).as_slice())
        })
    }

    /// A changed line whose line check still passes (found by search: the
    /// check is 2 bytes) is refused by the whole record's check.
    #[test]
    fn a_typo_the_line_check_misses_is_refused_by_the_record() {
        let paperkey = Paperkey::new("k-1", &unprotected(), None).unwrap();
        let lines = paperkey.typing_aid().unwrap();
        let (index, line) = (1, &lines[1]);
        // "02: " then the first two groups of 4 hex digits: their 32 bits
        // changed until the line's check passes again (1 in 65,536)
        let (head, rest) = (&line[..4], &line[13..]);
        let found = (0..=u32::MAX)
            .map(|bits| format!("{head}{:04x} {:04x}{rest}", bits >> 16, bits & 0xffff))
            .find(|typo| typo != line && passes_its_check(index + 1, typo))
            .expect("a typo the 2-byte line check misses");
        let mut changed = lines.clone();
        changed[index] = found;
        let err = parse_paperkey(&format!("typed:\n{}\n", changed.join("\n"))).unwrap_err();
        assert!(
            matches!(paperkey_error(&err), Some(PaperkeyError::RecordMismatch)),
            "{err}"
        );
    }

    fn paperkey_error(err: &Error) -> Option<&PaperkeyError> {
        err.chain().find_map(|e| e.downcast_ref::<PaperkeyError>())
    }

    /// The lines of the text QR code (between the block and the typing aid).
    fn text_qr_lines(text: &str) -> Vec<&str> {
        text.lines()
            .skip_while(|line| *line != END_MARKER)
            .skip(1)
            .take_while(|line| !line.starts_with("Typing aid"))
            .filter(|line| !line.is_empty())
            .collect()
    }

    /// Decodes a QR code from a grid of modules (true = dark).
    fn decode_modules(modules: &[Vec<bool>], scale: usize) -> String {
        let margin = 4 * scale;
        let width = modules.iter().map(Vec::len).max().unwrap() * scale + 2 * margin;
        let height = modules.len() * scale + 2 * margin;
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            let (Some(x), Some(y)) = (x.checked_sub(margin), y.checked_sub(margin)) else {
                return 255;
            };
            let dark = modules
                .get(y / scale)
                .and_then(|row| row.get(x / scale))
                .copied()
                .unwrap_or(false);
            if dark { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code expected");
        grids[0].decode().expect("QR code decodes").1
    }

    /// The modules of a half-block text rendering.
    fn modules_of_text(lines: &[&str]) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in lines {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    ' ' => (false, false),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    '\u{2588}' => (true, true),
                    other => panic!("unexpected character {other:?} in the QR code"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// The modules of the SVG rendering (4 units per module).
    fn modules_of_svg(html: &str) -> Vec<Vec<bool>> {
        let start = html.find("<svg").expect("an inline SVG");
        let svg = &html[start..html.find("</svg>").unwrap()];
        let size = regex::Regex::new(r#"width="(\d+)" height="(\d+)""#)
            .unwrap()
            .captures(svg)
            .unwrap();
        let width: usize = size[1].parse().unwrap();
        let height: usize = size[2].parse().unwrap();
        let mut modules = vec![vec![false; width / 4]; height / 4];
        let rect = regex::Regex::new(r"M(\d+) (\d+)h(\d+)v(\d+)H\d+V\d+").unwrap();
        for rect in rect.captures_iter(svg) {
            let [x, y, w, h] = [1, 2, 3, 4].map(|i| rect[i].parse::<usize>().unwrap() / 4);
            for row in &mut modules[y..y + h] {
                row[x..x + w].iter_mut().for_each(|m| *m = true);
            }
        }
        modules
    }

    #[test]
    fn printed_text_reads_back_to_the_key_file() {
        for (name, mut key_config) in key_configs() {
            let paperkey =
                Paperkey::new("offsite-2025", &key_config, Some("ck\n1\nAAA=\n")).unwrap();
            // an unprotected key file comes back with its fingerprint, had
            // it one or not (finding 68)
            if !key_config.is_protected() {
                key_config.fingerprint = Some(fingerprint(&KEY));
            }
            let text = paperkey.to_text().unwrap();
            // the whole page: the block is read
            assert_eq!(parse_paperkey(&text).unwrap(), key_config, "{name}");
            // the typing aid alone, as printed
            let typed = paperkey.typing_aid().unwrap().join("\n");
            assert_eq!(parse_paperkey(&typed).unwrap(), key_config, "{name}");
            // the page without the block: the typing aid among the rest
            let without_block: String = text
                .lines()
                .filter(|line| {
                    !line.starts_with("-----")
                        && !line.starts_with(' ')
                        && !line.starts_with('"')
                        && !line.starts_with('{')
                        && !line.starts_with('}')
                })
                .map(|line| format!("{line}\n"))
                .collect();
            assert!(!without_block.contains(BEGIN_MARKER));
            assert_eq!(
                parse_paperkey(&without_block).unwrap(),
                key_config,
                "{name}"
            );
        }
    }

    #[test]
    fn typing_aid_is_read_as_a_person_types_it() {
        let key_config = unprotected();
        let paperkey = Paperkey::new("offsite-2025", &key_config, None).unwrap();
        let lines = paperkey.typing_aid().unwrap();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            regex::Regex::new(r"^01: ([0-9a-f]{4} ){7}[0-9a-f]{4} - [0-9a-f]{4}$")
                .unwrap()
                .is_match(&lines[0]),
            "{}",
            lines[0]
        );
        // upper case, other spacing, CRLF, another separator, blank lines,
        // words around, a line typed twice the same, out of order
        let mut typed = String::from("Key offsite-2025, typed back:\r\n\r\n");
        for (index, line) in lines.iter().enumerate().rev() {
            let (number, rest) = line.split_once(": ").unwrap();
            let (data, check) = rest.split_once(" - ").unwrap();
            let data = if index % 2 == 0 {
                data.to_uppercase()
            } else {
                data.replace(' ', "")
            };
            typed.push_str(&format!(
                "  {}.  {data}   -{check}  \r\n\r\n",
                number.trim_start_matches('0')
            ));
            if index == 2 {
                typed.push_str(&format!("{line}\n"));
            }
        }
        typed.push_str("1. then import it - done\n2: be happy - ok\nthanks\n");
        assert_eq!(parse_paperkey(&typed).unwrap(), key_config);
    }

    #[test]
    fn one_changed_character_is_refused_naming_its_line() {
        for (name, key_config) in key_configs() {
            let paperkey = Paperkey::new("k-1", &key_config, None).unwrap();
            let lines = paperkey.typing_aid().unwrap();
            for (index, line) in lines.iter().enumerate() {
                let number = index + 1;
                // every hex digit after "NN: "
                for (position, c) in line.char_indices().skip(4) {
                    if !c.is_ascii_hexdigit() {
                        continue;
                    }
                    for replacement in [if c == '0' { '1' } else { '0' }, 'g'] {
                        let mut changed = lines.clone();
                        let mut typo = line.clone();
                        typo.replace_range(position..position + 1, &replacement.to_string());
                        changed[index] = typo;
                        let text = format!("typed:\n{}\n", changed.join("\n"));
                        let err = parse_paperkey(&text).unwrap_err();
                        if passes_its_check(number, &changed[index]) {
                            // a 2-byte line check misses 1 typo in 65,536
                            // (the key files are new each run): the whole
                            // record's check refuses it then
                            assert!(
                                matches!(paperkey_error(&err), Some(PaperkeyError::RecordMismatch)),
                                "{name}: {err}"
                            );
                            continue;
                        }
                        assert!(
                            matches!(
                                paperkey_error(&err),
                                Some(PaperkeyError::BadLine { line, input_line, .. })
                                    if *line == number && *input_line == number + 1
                            ),
                            "{name}: line {number} column {position} -> {replacement:?}: {err}"
                        );
                        let message = err.to_string();
                        assert!(message.contains(&format!("line {number:02} ")), "{message}");
                        assert!(!message.contains(&changed[index][4..]), "{message}");
                    }
                }
            }
        }
    }

    #[test]
    fn missing_extra_and_mixed_lines_are_named() {
        let paperkey = Paperkey::new("k-1", &unprotected(), None).unwrap();
        let lines = paperkey.typing_aid().unwrap();
        let parse = |lines: &[String]| parse_paperkey(&lines.join("\n")).unwrap_err();

        let err = parse(&[lines[0].clone(), lines[2].clone(), lines[3].clone()]);
        assert_eq!(paperkey_error(&err), Some(&PaperkeyError::MissingLine(2)));
        let err = parse(&lines[..3]);
        assert_eq!(paperkey_error(&err), Some(&PaperkeyError::MissingLine(4)));
        assert_eq!(err.to_string(), "typing-aid line 04 is missing");

        // a fifth line of another key
        let other =
            Paperkey::new("k-2", &KeyConfig::without_password([1; 32]).unwrap(), None).unwrap();
        let mut longer = lines.clone();
        let mut extra = KeyConfig::without_password([1; 32]).unwrap();
        extra.hint = Some("a hint long enough for a fifth line".into());
        extra.kdf = None;
        let fifth = Paperkey::new("k-3", &extra, None)
            .unwrap()
            .typing_aid()
            .unwrap()[4]
            .clone();
        longer.push(fifth);
        let err = parse(&longer);
        assert_eq!(
            paperkey_error(&err),
            Some(&PaperkeyError::ExtraLine { line: 5, lines: 4 })
        );

        // each line right, but line 2 of another key
        let mut mixed = lines.clone();
        mixed[1] = other.typing_aid().unwrap()[1].clone();
        let err = parse(&mixed);
        assert_eq!(paperkey_error(&err), Some(&PaperkeyError::RecordMismatch));

        // two lines swapped, numbers kept: each checksum names its line
        let mut swapped = lines.clone();
        let (a, b) = (lines[1][4..].to_string(), lines[2][4..].to_string());
        swapped[1] = format!("02: {b}");
        swapped[2] = format!("03: {a}");
        let err = parse(&swapped);
        assert!(
            matches!(
                paperkey_error(&err),
                Some(PaperkeyError::BadLine { line: 2, .. })
            ),
            "{err}"
        );

        // the same number twice, differently
        let mut twice = lines.clone();
        twice.push(swapped[1].clone());
        let err = parse(&twice);
        assert!(
            matches!(
                paperkey_error(&err),
                Some(PaperkeyError::DuplicateLine {
                    line: 2,
                    input_lines: (2, 5)
                })
            ),
            "{err}"
        );

        let err = parse_paperkey("nothing here\n").unwrap_err();
        assert_eq!(paperkey_error(&err), Some(&PaperkeyError::NotFound));
    }

    /// Finding 63: a hint quoting a block, or an END marker, is never read
    /// as the key's block, also where it holds line ends; two blocks are
    /// refused.
    #[test]
    fn a_hint_quoting_a_block_is_not_the_block() {
        let mut decoy = unprotected();
        decoy.hint = None;
        let quoted = format!(
            "{BEGIN_MARKER}{}{END_MARKER}",
            serde_json::to_string(&decoy).unwrap()
        );
        let mut protected = KeyConfig::with_key(&[7; 32], b"paper pass", Kdf::PBKDF2).unwrap();
        protected.hint = Some(quoted.clone());
        let mut plain = KeyConfig::without_password([3; 32]).unwrap();
        plain.hint = Some(format!("tape 7 {END_MARKER} shelf 2"));
        let mut plain_quoting = plain.clone();
        plain_quoting.hint = Some(quoted);
        // a key file's hint on lines of its own (a key file is anyone's:
        // finding 65 escapes its line ends on the facts line)
        let mut protected_lines = protected.clone();
        protected_lines.hint = Some(format!(
            "\n{BEGIN_MARKER}\n{}\n{END_MARKER}</p>\n",
            serde_json::to_string_pretty(&decoy).unwrap()
        ));
        for key_config in [protected, plain, plain_quoting, protected_lines] {
            let paperkey = Paperkey::new("k-1", &key_config, None).unwrap();
            let text = paperkey.to_text().unwrap();
            assert_eq!(parse_paperkey(&text).unwrap(), key_config, "{text}");
            let twice = format!(
                "{text}\n{}",
                Paperkey::new("k-2", &decoy, None)
                    .unwrap()
                    .to_text()
                    .unwrap()
            );
            let err = parse_paperkey(&twice).unwrap_err();
            assert_eq!(paperkey_error(&err), Some(&PaperkeyError::SeveralBlocks(2)));
        }
    }

    /// The block of an unprotected key holds its fingerprint, its file's
    /// or, for a key file without one, computed (finding 68): another key
    /// typed into the data field is caught either way.
    #[test]
    fn changed_block_is_refused() {
        let mut no_fingerprint = unprotected();
        no_fingerprint.fingerprint = None;
        for key_config in [unprotected(), no_fingerprint] {
            let text = Paperkey::new("k-1", &key_config, None)
                .unwrap()
                .to_text()
                .unwrap();
            let data = base64::engine::general_purpose::STANDARD.encode(KEY);
            // another key in the data field: the stored fingerprint catches it
            let changed = text.replacen(&data[..4], "WlpZ", 1);
            assert_ne!(changed, text);
            let err = parse_paperkey(&changed).unwrap_err();
            assert!(
                matches!(
                    err.chain().find_map(|e| e.downcast_ref::<KeyError>()),
                    Some(KeyError::FingerprintMismatch { .. })
                ),
                "{err}"
            );
            assert!(!err.to_string().contains(&data[4..]), "{err}");
        }
        let text = Paperkey::new("k-1", &unprotected(), None)
            .unwrap()
            .to_text()
            .unwrap();
        let cut = text.replacen(END_MARKER, "", 1);
        let err = parse_paperkey(&cut).unwrap_err();
        assert_eq!(paperkey_error(&err), Some(&PaperkeyError::NoEndMarker));
    }

    #[test]
    fn page_shows_id_fingerprint_checkpoint_and_upstream_block() {
        let key_config = unprotected();
        let checkpoint = "pbs-keystore/host/store\n42\nAbCd=\n\n— host 1234\n";
        let paperkey = Paperkey::new("offsite-2025", &key_config, Some(checkpoint)).unwrap();
        let text = paperkey.to_text().unwrap();
        let fingerprint = crate::fingerprint(&KEY).signature();
        assert!(text.contains("Key id:      offsite-2025\n"), "{text}");
        assert!(
            text.contains(&format!("Fingerprint: {fingerprint}\n")),
            "{text}"
        );
        assert!(text.contains("  pbs-keystore/host/store\n  42\n  AbCd=\n\n  — host 1234\n"));
        // upstream's block: the pretty JSON between the markers
        let block = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            serde_json::to_string_pretty(&key_config).unwrap()
        );
        assert!(text.contains(&block), "{text}");

        let html = paperkey.to_html().unwrap();
        assert!(html.contains(&fingerprint));
        assert!(html.contains("— host 1234"));
        assert!(html.contains(&html_escape(block.trim_end())));
        for line in paperkey.typing_aid().unwrap() {
            assert!(text.contains(&format!("\n{line}\n")));
            assert!(html.contains(&line));
        }
        // text from the key file is escaped
        let mut hinted = KeyConfig::with_key(&KEY, b"paper pass", Kdf::PBKDF2).unwrap();
        hinted.hint = Some("<script>alert(1)</script>".into());
        let html = Paperkey::new("k-1", &hinted, Some("<b>"))
            .unwrap()
            .to_html()
            .unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn qr_codes_decode_to_the_key_file() {
        for (name, mut key_config) in key_configs() {
            let paperkey = Paperkey::new("k-1", &key_config, None).unwrap();
            // with its fingerprint, as the block (finding 68)
            if !key_config.is_protected() {
                key_config.fingerprint = Some(fingerprint(&KEY));
            }
            let pretty = paperkey.key_file_pretty().unwrap();

            let text = paperkey.to_text().unwrap();
            let lines = text_qr_lines(&text);
            let decoded = decode_modules(&modules_of_text(&lines), 4);
            assert_eq!(decoded, pretty, "{name}: text QR code");
            assert_eq!(
                KeyConfig::from_json(decoded.as_bytes()).unwrap(),
                key_config
            );

            let html = paperkey.to_html().unwrap();
            let decoded = decode_modules(&modules_of_svg(&html), 4);
            assert_eq!(decoded, pretty, "{name}: SVG QR code");
        }
    }

    #[test]
    fn wrong_stored_fingerprint_makes_no_paperkey() {
        let mut key_config = unprotected();
        key_config.fingerprint = Some(crate::fingerprint(&[1; 32]));
        let err = Paperkey::new("k-1", &key_config, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot make a paperkey of key 'k-1'"),
            "{err}"
        );
        let mut huge = unprotected();
        huge.hint = Some("x".repeat(20_000));
        assert!(Paperkey::new("k-1", &huge, None).is_err());
    }

    #[test]
    fn debug_and_errors_hold_no_key_bytes() {
        let paperkey = Paperkey::new("k-1", &unprotected(), None).unwrap();
        let debug = format!("{paperkey:?}");
        assert!(debug.contains("<redacted"), "{debug}");
        assert!(!debug.contains(&hex::encode(KEY)), "{debug}");
        assert!(!debug.contains("5a5a"), "{debug}");
    }

    #[test]
    fn key_file_json_or_paperkey() {
        let key_config = unprotected();
        let json = key_config.to_json().unwrap();
        assert_eq!(parse_key_file_or_paperkey(&json).unwrap(), key_config);
        let text = Paperkey::new("k-1", &key_config, None)
            .unwrap()
            .to_text()
            .unwrap();
        assert_eq!(parse_key_file_or_paperkey(&text).unwrap(), key_config);
    }
}
