//! Where the key commands' passphrases come from: the first line of a file
//! named by an option (`--passphrase-file FILE`), or the terminal, without
//! echo. Never the command line, where the process list shows them, and
//! never a pipe on standard input, which `import --file -` reads keys from.
//!
//! Passphrases are held in [`Zeroizing`] buffers, wiped when dropped.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Error, bail, format_err};
use zeroize::{Zeroize, Zeroizing};

use super::terminal::read_hidden;

/// Longest passphrase file read (a passphrase is a line, not a document).
const MAX_PASSPHRASE_FILE: u64 = 4096;

/// A passphrase, wiped when dropped.
pub type Passphrase = Zeroizing<Vec<u8>>;

/// The first line of `path` (without its line end), for the option
/// `option`.
///
/// # Errors
///
/// The file cannot be read, is larger than 4 KiB, or its first line is
/// empty; the message names the option and the file, never its content.
pub fn from_file(path: &Path, option: &str) -> Result<Passphrase, Error> {
    let mut data = Zeroizing::new(Vec::new());
    let file = std::fs::File::open(path)
        .map_err(|err| format_err!("unable to open {option} {path:?} - {err}"))?;
    file.take(MAX_PASSPHRASE_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|err| format_err!("unable to read {option} {path:?} - {err}"))?;
    if data.len() as u64 > MAX_PASSPHRASE_FILE {
        bail!(
            "{option} {path:?} is larger than {MAX_PASSPHRASE_FILE} bytes - not a passphrase file"
        );
    }
    let end = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let mut line = data[..end].to_vec();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.is_empty() {
        line.zeroize();
        bail!("{option} {path:?} holds no passphrase - its first line is empty");
    }
    Ok(Zeroizing::new(line))
}

/// The passphrase of a new bundle: the first line of `path`, as
/// [`from_file`] reads it, refused if it is no secret ([`no_secret`]).
///
/// # Errors
///
/// As [`from_file`]; or the line is no secret, naming the option, the
/// file and what its first line is.
pub fn new_from_file(path: &Path, option: &str) -> Result<Passphrase, Error> {
    no_secret(
        from_file(path, option)?,
        &format!("{option} {path:?} holds no passphrase - its first line"),
    )
}

/// The passphrase of a new bundle asked for on the terminal ([`ask`],
/// confirmed), refused if it is no secret ([`no_secret`]): a public key's
/// first line pasted at the prompt. Judged before anything is made (a
/// rotation's new key is stored only after its export's recipients are
/// known).
pub fn ask_new(prompt: &str) -> Result<Passphrase, Error> {
    no_secret(ask(prompt, true)?, "the passphrase typed")
}

/// `passphrase` (`what`, in words) for a new bundle, refused if it is no
/// secret but the first line of a file given in its place: a public key
/// meant for --master-pubkey, a paperkey (finding 67). A passphrase that
/// opens a bundle is not judged: a bundle made so before still opens.
fn no_secret(passphrase: Passphrase, what: &str) -> Result<Passphrase, Error> {
    if let Some(why) = pbs_key_config::passphrase_no_secret(&passphrase) {
        bail!(
            "{what} is no secret: {why} - anyone could open the bundle (an RSA public key goes \
             to --master-pubkey)"
        );
    }
    Ok(passphrase)
}

/// Whether a passphrase can be asked for: standard input is a terminal.
pub fn can_ask() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks for a passphrase on the terminal without echo; with `confirm`,
/// twice, and they must match.
pub fn ask(prompt: &str, confirm: bool) -> Result<Passphrase, Error> {
    let first = into_passphrase(read_hidden(prompt)?);
    if first.is_empty() {
        bail!("no passphrase given");
    }
    if confirm {
        let second = into_passphrase(read_hidden("Retype passphrase: ")?);
        if *first != *second {
            bail!("passphrases do not match");
        }
    }
    Ok(first)
}

/// The bytes of a line read by [`read_hidden`], moved (not copied) into a
/// [`Passphrase`].
fn into_passphrase(mut line: Zeroizing<String>) -> Passphrase {
    Zeroizing::new(std::mem::take(&mut *line).into_bytes())
}

/// A passphrase from `file` (named as `option` in errors), else asked
/// on the terminal with `prompt` (twice with `confirm`).
///
/// # Errors
///
/// No file and no terminal: says to give `option`.
pub fn get(
    file: Option<&Path>,
    option: &str,
    prompt: &str,
    confirm: bool,
) -> Result<Passphrase, Error> {
    match file {
        Some(path) => from_file(path, option),
        None if can_ask() => ask(prompt, confirm),
        None => {
            bail!("a passphrase is needed - give {option} FILE (or run on a terminal to be asked)")
        }
    }
}
